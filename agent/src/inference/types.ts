import type { ExecutionProvider } from '@flotilla/protocol';

/** KServe v2 / Open Inference Protocol datatypes that Flotilla serves. */
export type Datatype = 'BOOL' | 'UINT8' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array // FP16 bits
  | string[]; // BYTES

/** One named tensor, row-major. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** A declared model input or output; -1 marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface LoadSpec {
  model: string;
  version: string;
  /** Path of the verified artifact on local disk (ONNX file or TensorRT plan). */
  path: string;
  format: 'onnx' | 'tensorrt-plan';
  /** Preference order; the first that loads wins. Unavailable providers fall back to the next. */
  providers: ExecutionProvider[];
}

/** A model version loaded and ready to serve. */
export interface LoadedModel {
  readonly model: string;
  readonly version: string;
  /** The provider that actually loaded (after fallback). */
  readonly provider: ExecutionProvider;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  infer(inputs: readonly Tensor[], opts?: { outputs?: readonly string[]; signal?: AbortSignal }): Promise<Tensor[]>;
  /** Waits for in-flight requests, then frees the session. Safe to call twice. */
  unload(): Promise<void>;
}

/**
 * A way to run models: in-process onnxruntime (worker threads), or a sidecar KServe v2 server with
 * model-repository control (Triton on a Jetson, for TensorRT plans).
 */
export interface InferenceBackend {
  readonly kind: 'onnxruntime' | 'kserve-sidecar';
  /** True when this backend can serve that format with one of those providers on this device. */
  supports(spec: Pick<LoadSpec, 'format' | 'providers'>): boolean;
  load(spec: LoadSpec): Promise<LoadedModel>;
  close(): Promise<void>;
}
