import { readFileSync } from 'node:fs';
import { FlotillaError, checkConfig, deepFreeze } from '@flotilla/protocol';
import { applyPoolEnv } from './env.ts';
import { PoolConfigSchema, type FrozenPoolConfig, type PoolConfig } from './schema.ts';

export interface LoadPoolConfigOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
}

function invalid(message: string, details?: unknown): FlotillaError {
  return new FlotillaError('FLT_CONFIG_INVALID', `invalid pool worker configuration: ${message}`, details);
}

/** Checks what the schema cannot say: preferred sizes ascending, unique and within maxBatchSize. */
export function batchingProblems(b: Pick<PoolConfig['batching'], 'maxBatchSize' | 'preferredBatchSizes'>, where: string): string[] {
  const problems: string[] = [];
  const sizes = b.preferredBatchSizes;
  for (let i = 0; i < sizes.length; i++) {
    const s = sizes[i] as number;
    if (s > b.maxBatchSize) problems.push(`${where}.preferredBatchSizes: ${s} is larger than maxBatchSize ${b.maxBatchSize}`);
    if (i > 0 && s <= (sizes[i - 1] as number)) problems.push(`${where}.preferredBatchSizes must be strictly ascending`);
  }
  return problems;
}

/** Validates a raw config object (file and env already merged): fills defaults, checks, freezes. */
export function validatePoolConfig(raw: unknown): FrozenPoolConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('the configuration must be an object');
  const checked = checkConfig(PoolConfigSchema, raw);
  if (checked.problems.length > 0) throw invalid(checked.problems.join('; '), { problems: checked.problems });
  const candidate = checked.value;
  const config = candidate as PoolConfig;
  const problems = batchingProblems(config.batching, 'batching');
  if (problems.length > 0) throw invalid(problems.join('; '), { problems });
  return deepFreeze(config) as FrozenPoolConfig;
}

/** `--config <path>`, `--config=<path>`, else FLOTILLA_POOL_CONFIG, else no file. */
export function poolConfigPath(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--config') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw invalid('--config needs a path');
      return next;
    }
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return env.FLOTILLA_POOL_CONFIG || undefined;
}

/** Loads the config: JSON file (optional), FLOTILLA_POOL_* env on top. Throws FLT_CONFIG_INVALID listing every problem. */
export function loadPoolConfig(opts: LoadPoolConfigOptions = {}): FrozenPoolConfig {
  const env = opts.env ?? process.env;
  const path = poolConfigPath(opts.argv ?? process.argv.slice(2), env);
  let raw: Record<string, unknown> = {};
  if (path) {
    let text: string;
    try {
      text = (opts.readFile ?? ((p) => readFileSync(p, 'utf8')))(path);
    } catch (err) {
      throw invalid(`cannot read ${path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw invalid(`${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid(`${path} must hold a JSON object`);
    raw = parsed as Record<string, unknown>;
  }
  applyPoolEnv(raw, env);
  return validatePoolConfig(raw);
}
