/** What a model card says about one tensor a model takes or gives. Shape uses -1 for the batch. */
export interface TensorSignature {
  name: string;
  dtype: 'float32';
  shape: number[];
  /** The range input values are expected in, where the model was built for one. */
  range?: [number, number];
  description?: string;
}

/** One tensor of golden data, row-major. */
export interface GoldenTensor {
  dtype: 'float32';
  shape: number[];
  data: number[];
}

/** Known inputs with the outputs a correct build must give, within `tolerance` (max abs diff). */
export interface Golden {
  inputs: Record<string, GoldenTensor>;
  outputs: Record<string, GoldenTensor>;
  tolerance: number;
}

export type Precision = 'fp32' | 'int8';

/** How an int8 build was quantized: QDQ with calibrated activation scales, or scales computed at run time. */
export type Quantization = 'static-qdq' | 'dynamic';

/**
 * A deliberate defect, for rollback tests: `golden-mismatch` loads and runs but fails its golden
 * self-test; `unloadable` is a well-formed protobuf that onnxruntime refuses to load.
 */
export type Fault = 'golden-mismatch' | 'unloadable';

/** Everything the rest of Flotilla needs to know about one built model file. */
export interface ModelCard {
  /** Build name, also the folder it is written to: `<outDir>/<name>/model.onnx`. */
  name: string;
  /** The logical model this build is a variant of (builds of one model share signatures and labels). */
  model: string;
  /** Version label. */
  version: string;
  description: string;
  format: 'onnx';
  precision: Precision;
  quantization?: Quantization;
  irVersion: number;
  opset: number;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** Class labels, index-aligned with the last output dimension; null where classes mean nothing. */
  labels: string[] | null;
  golden: Golden;
  /** Measured figures (accuracy and such); every number here comes from running the built file. */
  metrics: Record<string, number>;
  fault?: Fault;
  /** Other files in the build folder, by role (e.g. `evalSet: 'eval-set.json'`). */
  files: Record<string, string>;
  /** sha256 (hex) and length of model.onnx. */
  sha256: string;
  bytes: number;
  /** Hash of everything the build was generated from; equal hash means equal output. */
  generatorHash: string;
}

/** The evaluation-set file written next to classifier builds. */
export interface EvalSet {
  input: string;
  shape: number[];
  labels: number[];
  /** One row of input values per sample. */
  data: number[][];
}
