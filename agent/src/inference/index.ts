export type { Datatype, InferenceBackend, LoadSpec, LoadedModel, Tensor, TensorData, TensorSpec } from './types.ts';
export { validateInputs, elementCount } from './validate-inputs.ts';
export { OnnxRuntimeBackend, type OnnxRuntimeBackendOptions } from './onnx/onnxruntime-backend.ts';
export { OnnxLoadedModel, type OnnxInferOptions, type OnnxModelState, type OnnxLoadedModelEvents } from './onnx/onnx-loaded-model.ts';
export { ORT_PROVIDERS, ortAvailableProviders, providersToTry, type AvailableProviders, type OrtProvider } from './onnx/provider-probe.ts';
export type { ProviderAttempt } from './onnx/session-worker-protocol.ts';
export { ModelHost, type InactiveRole, type ModelHostOptions, type SwitchResult } from './host/model-host.ts';
export { HealthWindow, percentile, type HealthSnapshot } from './host/health-window.ts';
export { selfTest, type SelfTestOptions } from './host/self-test.ts';
export { MicroBatcher, batchable, type BatchingConfig } from './batching/micro-batcher.ts';
export { InferenceMetrics } from './service/inference-metrics.ts';
export {
  InferenceService,
  type InferOptions,
  type InferResult,
  type InferenceServiceOptions,
  type ModelStatus,
  type StageOptions,
  type StageResult,
  type VersionStatus,
} from './service/inference-service.ts';
export { compareGolden } from './host/golden-compare.ts';
export { ResultCache, resultCacheKey, ENTRY_OVERHEAD_BYTES, type ResultCacheConfig, type ResultCacheStats } from './result-cache.ts';
export { AbSplitRun, ArmKpis, stickyPoint, topProbabilities, type AbArm } from './ab-split.ts';
