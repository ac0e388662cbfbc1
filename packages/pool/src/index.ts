/**
 * @flotilla/pool: the cloud pool worker. A KServe v2 server with dynamic batching over a model
 * repository folder; the embedded default for a cloud GPU pool, replaced by Triton in production.
 */
export { buildPoolWorker, startPoolWorker, type PoolWorker, type PoolWorkerOptions } from './build-pool-worker.ts';
export { PoolConfigSchema, BatchingSchema, type PoolConfig, type FrozenPoolConfig, type BatchingConfig } from './config/schema.ts';
export { loadPoolConfig, validatePoolConfig, type LoadPoolConfigOptions } from './config/load.ts';
export { POOL_ENV_VARS } from './config/env.ts';
export { DynamicBatcher, type BatchRunner, type BatcherEvents, type SubmitOptions } from './batching/dynamic-batcher.ts';
export { IdempotencyCache, type IdempotencyOutcome } from './idempotency/idempotency-cache.ts';
export { ModelManager, type ServedVersion, type ModelState } from './repository/model-manager.ts';
export { ModelRepository, MODEL_FILE, CONFIG_FILE } from './repository/model-repository.ts';
export { ModelConfigSchema, type ModelConfig } from './repository/model-config.ts';
export { PoolMetrics } from './metrics/pool-metrics.ts';
export { systemTimers, type PoolTimers } from './runtime/timers.ts';
export { mapError } from './http/error-reply.ts';
export { POOL_VERSION } from './version.ts';
