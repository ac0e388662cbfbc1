import { FlotillaError } from '@flotilla/protocol';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { batchingProblems } from '../config/load.ts';
import { POOL_PROVIDERS, type BatchingConfig, type FrozenPoolConfig } from '../config/schema.ts';

/**
 * `<repository>/<model>/config.json`: what Triton keeps in config.pbtxt, in Flotilla's names. Every
 * key is optional; the pool-wide batching config fills the rest.
 */
export const ModelConfigSchema = Type.Object(
  {
    dynamicBatching: Type.Optional(Type.Boolean()),
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
    maxQueueDelayUs: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    preferredBatchSizes: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { maxItems: 16 })),
    maxQueueSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    instances: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** 'latest' (default) serves the highest version folder; 'all' serves every one. */
    versionPolicy: Type.Optional(Type.Union([Type.Literal('latest'), Type.Literal('all')])),
    providers: Type.Optional(Type.Array(Type.Union(POOL_PROVIDERS.map((p) => Type.Literal(p))), { minItems: 1, maxItems: 3 })),
  },
  { additionalProperties: false },
);

export type ModelConfig = Static<typeof ModelConfigSchema>;

function invalid(model: string, message: string): FlotillaError {
  return new FlotillaError('FLT_POOL_MODEL_CONFIG_INVALID', `${model}/config.json: ${message}`, { model });
}

/** Parses a model's config.json text; throws FLT_POOL_MODEL_CONFIG_INVALID. */
export function parseModelConfig(model: string, text: string): ModelConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(model, 'is not valid JSON');
  }
  if (!Value.Check(ModelConfigSchema, parsed)) {
    const problems = [...Value.Errors(ModelConfigSchema, parsed)]
      .filter((e) => e.keyword !== 'boolean')
      .map((e) => `${e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(root)'}: ${e.message}`);
    throw invalid(model, problems.join('; '));
  }
  return parsed;
}

/** The pool-wide batching config with a model's overrides on top, checked as a whole. */
export function effectiveBatching(model: string, defaults: FrozenPoolConfig['batching'], config: ModelConfig): BatchingConfig {
  const merged: BatchingConfig = {
    dynamicBatching: config.dynamicBatching ?? defaults.dynamicBatching,
    maxBatchSize: config.maxBatchSize ?? defaults.maxBatchSize,
    maxQueueDelayUs: config.maxQueueDelayUs ?? defaults.maxQueueDelayUs,
    preferredBatchSizes: [...(config.preferredBatchSizes ?? defaults.preferredBatchSizes)],
    maxQueueSize: config.maxQueueSize ?? defaults.maxQueueSize,
    instances: config.instances ?? defaults.instances,
  };
  const problems = batchingProblems(merged, 'batching');
  if (problems.length > 0) throw invalid(model, problems.join('; '));
  return merged;
}
