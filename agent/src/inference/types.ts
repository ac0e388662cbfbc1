import type { ExecutionProvider } from '@flotilla/protocol';
import type { Datatype, Tensor } from '@flotilla/kserve';

/** Tensors are the KServe v2 / Open Inference Protocol ones: one definition for the wire and the runtime. */
export type { Datatype, Tensor, TensorData } from '@flotilla/kserve';

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
