import { Type, type Static } from 'typebox';
import { DEVICE_ID_PATTERN, LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from '@flotilla/protocol';

const strict = { additionalProperties: false } as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const PROBE_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;

/**
 * The whole agent configuration, with every default in this one place. Loaded from a JSON file,
 * overlaid by FLOTILLA_* environment variables (config/env.ts), validated once, then frozen.
 */
export const AgentConfigSchema = Type.Object(
  {
    /** Base URL of the control server, e.g. https://flotilla.example.com */
    serverUrl: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048 }),
    /** Defaults to the sanitized hostname (config/hostname.ts). Also the MQTT client id and username. */
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
    /** Fleet enrollment token; needed only until the device holds a credential. */
    enrollmentToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256 })),
    /** Holds identity.json and agent.db. */
    dataDir: Type.String({ minLength: 1, maxLength: 4096, default: '/var/lib/flotilla-agent' }),
    // propertyNames rather than a pattern key: TypeBox's Value.Default trips over a pattern-keyed
    // record with additionalProperties false when a key does not match.
    labels: Type.Record(Type.String(), Type.String({ pattern: LABEL_VALUE_PATTERN }), {
      propertyNames: { pattern: LABEL_KEY_PATTERN },
      maxProperties: 64,
      default: {},
    }),
    heartbeatSec: Type.Integer({ minimum: 5, maximum: 3600, default: 30 }),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    /** Overrides the broker URL the server hands out at enrollment (NAT, split-horizon DNS). */
    mqttUrl: Type.Optional(Type.String({ pattern: '^mqtts?://[^\\s]+$', maxLength: 2048 })),
    mqtt: Type.Object(
      {
        keepaliveSec: Type.Integer({ minimum: 5, maximum: 3600, default: 30 }),
        connectTimeoutMs: Type.Integer({ minimum: 500, maximum: 120_000, default: 10_000 }),
        backoff: Type.Object(
          {
            initialMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1_000 }),
            maxMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 60_000 }),
            multiplier: Type.Number({ minimum: 1, maximum: 10, default: 2 }),
          },
          { ...strict, default: {} },
        ),
      },
      { ...strict, default: {} },
    ),
    outbox: Type.Object(
      {
        maxEntries: Type.Integer({ minimum: 16, maximum: 10_000_000, default: 10_000 }),
        maxBytes: Type.Integer({ minimum: 64 * 1024, maximum: 16 * 1024 ** 3, default: 64 * 1024 * 1024 }),
        /** Events published but not yet acknowledged by the server, at most. */
        inflightWindow: Type.Integer({ minimum: 1, maximum: 1000, default: 32 }),
        /** Resend an unacknowledged event after this long (the server deduplicates by id). */
        ackTimeoutMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
      },
      { ...strict, default: {} },
    ),
    inventory: Type.Object(
      {
        /** Execution providers to try, in preference order; only those that create a session are reported. */
        providers: Type.Array(Type.Union(PROBE_PROVIDERS.map((p) => Type.Literal(p))), {
          uniqueItems: true,
          maxItems: 3,
          default: [...PROBE_PROVIDERS],
        }),
        commandTimeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 3_000 }),
      },
      { ...strict, default: {} },
    ),
    /** Over-the-air model installs (docs/ota.md). */
    ota: Type.Object(
      {
        /** Off: every desired model is reported as pending and nothing is installed. */
        enabled: Type.Boolean({ default: true }),
        health: Type.Object(
          {
            windowMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 10_000 }),
            minRequests: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 20 }),
            maxErrorRate: Type.Number({ minimum: 0, maximum: 1, default: 0.05 }),
            /** p99 latency bound in ms; absent: latency is not judged. */
            maxP99Ms: Type.Optional(Type.Number({ minimum: 0, maximum: 600_000 })),
            maxWaitMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 60_000 }),
            pollMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 500 }),
          },
          { ...strict, default: {} },
        ),
        download: Type.Object(
          {
            stallMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
            maxAttempts: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
            backoffMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 1_000 }),
            maxBackoffMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
            progressIntervalMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 1_000 }),
            transport: Type.Union([Type.Literal('direct'), Type.Literal('undici')], { default: 'direct' }),
          },
          { ...strict, default: {} },
        ),
        reserveBytes: Type.Integer({ minimum: 0, maximum: 1024 ** 4, default: 64 * 1024 * 1024 }),
        retryMs: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 30_000 }),
        /** Re-report the serving versions' health counters this often when they moved (0: only with state changes). */
        healthReportMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 30_000 }),
      },
      { ...strict, default: {} },
    ),
    /** Drift monitoring: per model version summaries of live traffic (docs/inference.md "Drift"). */
    drift: Type.Object(
      {
        /** Off: nothing is summarized or sent. */
        enabled: Type.Boolean({ default: true }),
        /** One summary window per model version this often, sent only when it holds requests. */
        intervalMs: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 60_000 }),
        /** Range of the input-value histogram; values outside count in the end bins. */
        inputRange: Type.Array(Type.Number(), { minItems: 2, maxItems: 2, default: [0, 1] }),
        /** Summarize 1 request in this many (1: all of them). */
        sampleEvery: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
      },
      { ...strict, default: {} },
    ),
    /** Edge to cloud (docs/escalation.md); policies and routes come from the desired state. */
    escalation: Type.Object(
      {
        /**
         * Bytes of hard-example inputs too large for an MQTT event kept on disk
         * (`<dataDir>/hard-example-inputs`) until uploaded; when full, such inputs are left out of
         * their example. 0 turns the spool off.
         */
        inputSpoolMaxBytes: Type.Integer({ minimum: 0, maximum: 64 * 1024 ** 3, default: 64 * 1024 * 1024 }),
      },
      { ...strict, default: {} },
    ),
    /** Local inference (docs/inference.md). */
    inference: Type.Object(
      {
        /** Result cache of each model's active version, emptied on every switch: off (0 bytes) unless set. */
        cache: Type.Object(
          {
            /** Bound per model, in bytes; 0 turns the cache off. */
            maxBytes: Type.Integer({ minimum: 0, maximum: 16 * 1024 ** 3, default: 0 }),
            /** Per-model bounds that replace `maxBytes` for the models named (0: off for that model). */
            models: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Integer({ minimum: 0, maximum: 16 * 1024 ** 3 }), { maxProperties: 64, default: {} }),
          },
          { ...strict, default: {} },
        ),
      },
      { ...strict, default: {} },
    ),
    /** The local KServe v2 inference API for applications on this device. */
    localApi: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        host: Type.String({ minLength: 1, maxLength: 255, default: '127.0.0.1' }),
        /** 8000 is Triton's HTTP port, so Triton clients work unchanged; 0 picks a free port (logged). */
        port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8000 }),
      },
      { ...strict, default: {} },
    ),
  },
  strict,
);

export type AgentConfig = Static<typeof AgentConfigSchema>;

/** The result-cache bound of one model under this configuration; undefined when its cache is off. */
export function cacheConfigFor(cache: { readonly maxBytes: number; readonly models: Readonly<Record<string, number>> }, model: string): { maxBytes: number } | undefined {
  const maxBytes = Object.hasOwn(cache.models, model) ? (cache.models[model] as number) : cache.maxBytes;
  return maxBytes > 0 ? { maxBytes } : undefined;
}

/** Deep-readonly view handed to the agent: the loader freezes it. */
export type FrozenAgentConfig = DeepReadonly<AgentConfig>;

type DeepReadonly<T> = T extends (infer E)[]
  ? ReadonlyArray<DeepReadonly<E>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
