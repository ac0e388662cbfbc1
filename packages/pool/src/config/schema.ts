import { Type, type Static } from 'typebox';

const strict = { additionalProperties: false } as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const POOL_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;

/**
 * How one model's requests are queued and batched. The pool-wide values are the defaults; a model's
 * `config.json` in the repository may override any of them (repository/model-config.ts).
 */
export const BatchingSchema = Type.Object(
  {
    /** Off: every request runs alone (up to `instances` at once), as Triton without dynamic_batching. */
    dynamicBatching: Type.Boolean({ default: true }),
    /** Most rows (dim 0) in one session run; a request with more rows is refused. */
    maxBatchSize: Type.Integer({ minimum: 1, maximum: 4096, default: 32 }),
    /** Longest the oldest queued request waits for company while an instance is free (µs). */
    maxQueueDelayUs: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1000 }),
    /** Batch sizes to send at once when the queue can form one exactly (ascending, each ≤ maxBatchSize). */
    preferredBatchSizes: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { maxItems: 16, default: [] }),
    /** Requests waiting (not yet running) at most; the next one gets 429 FLT_POOL_QUEUE_FULL. */
    maxQueueSize: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 256 }),
    /** Worker threads per model version, each with its own session: runs in parallel at most. */
    instances: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
  },
  { ...strict, default: {} },
);

export type BatchingConfig = Static<typeof BatchingSchema>;

/**
 * The pool worker's whole configuration with every default in this one place. Loaded from a JSON
 * file, overlaid by FLOTILLA_POOL_* environment variables (config/env.ts), validated once, frozen.
 */
export const PoolConfigSchema = Type.Object(
  {
    /** `<modelRepository>/<model>/<version>/model.onnx`, optional `<model>/config.json`. */
    modelRepository: Type.String({ minLength: 1, maxLength: 4096 }),
    host: Type.String({ minLength: 1, maxLength: 255, default: '0.0.0.0' }),
    /** 8000 is Triton's HTTP port, so clients need no change when Triton takes over. */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000 }),
    /** Models loaded at start: '*' for every folder of the repository, or names; the rest wait for a load call. */
    startupModels: Type.Union([Type.Literal('*'), Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1024 })], { default: '*' }),
    batching: BatchingSchema,
    /** Preference order; the first that loads wins (onnxruntime-node's CPU build has only cpu). */
    providers: Type.Array(Type.Union(POOL_PROVIDERS.map((p) => Type.Literal(p))), { minItems: 1, maxItems: 3, default: ['cpu'] }),
    /** onnxruntime intra-op threads per session. */
    intraOpThreads: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
    /** Shared-memory lane per worker thread; a batch whose tensors fit crosses without a structured clone. */
    laneBytes: Type.Integer({ minimum: 4096, maximum: 256 * 1024 * 1024, default: 1024 * 1024 }),
    /** Longest a request may wait in the batching queue (a request's `timeout` parameter, in µs, may shorten it). */
    requestTimeoutMs: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 10_000 }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 32 * 1024 * 1024 }),
    idempotency: Type.Object(
      {
        /** How long a finished answer is replayed for a repeated key; 0 turns replay off. */
        ttlMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 60_000 }),
        maxEntries: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000 }),
        /** Treat the request body's `id` as a key when there is no Idempotency-Key header. */
        useRequestId: Type.Boolean({ default: true }),
      },
      { ...strict, default: {} },
    ),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
  },
  strict,
);

export type PoolConfig = Static<typeof PoolConfigSchema>;

type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

export type FrozenPoolConfig = DeepReadonly<PoolConfig>;
