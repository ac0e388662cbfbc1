/**
 * FLOTILLA_POOL_* environment variables and where they land in the config. Values stay strings
 * unless they parse cleanly, so a bad number reaches the schema and fails there with the key's name.
 */
type Setter = (target: Record<string, unknown>, raw: string) => void;

function at(path: readonly string[], convert: (raw: string) => unknown = (raw) => raw): Setter {
  return (target, raw) => {
    let node = target;
    for (const part of path.slice(0, -1)) {
      const next = node[part];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = convert(raw);
  };
}

function numeric(raw: string): unknown {
  const trimmed = raw.trim();
  return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : raw;
}

function boolean(raw: string): unknown {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return raw;
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export const POOL_ENV_VARS: Readonly<Record<string, Setter>> = {
  FLOTILLA_POOL_MODEL_REPOSITORY: at(['modelRepository']),
  FLOTILLA_POOL_HOST: at(['host']),
  FLOTILLA_POOL_PORT: at(['port'], numeric),
  // '*' for every model, 'none' for none, else a comma-separated list.
  FLOTILLA_POOL_STARTUP_MODELS: at(['startupModels'], (raw) => (raw.trim() === '*' ? '*' : raw.trim() === 'none' ? [] : list(raw))),
  FLOTILLA_POOL_DYNAMIC_BATCHING: at(['batching', 'dynamicBatching'], boolean),
  FLOTILLA_POOL_MAX_BATCH_SIZE: at(['batching', 'maxBatchSize'], numeric),
  FLOTILLA_POOL_MAX_QUEUE_DELAY_US: at(['batching', 'maxQueueDelayUs'], numeric),
  FLOTILLA_POOL_PREFERRED_BATCH_SIZES: at(['batching', 'preferredBatchSizes'], (raw) => list(raw).map(numeric)),
  FLOTILLA_POOL_MAX_QUEUE_SIZE: at(['batching', 'maxQueueSize'], numeric),
  FLOTILLA_POOL_INSTANCES: at(['batching', 'instances'], numeric),
  FLOTILLA_POOL_PROVIDERS: at(['providers'], list),
  FLOTILLA_POOL_INTRA_OP_THREADS: at(['intraOpThreads'], numeric),
  FLOTILLA_POOL_REQUEST_TIMEOUT_MS: at(['requestTimeoutMs'], numeric),
  FLOTILLA_POOL_BODY_LIMIT_BYTES: at(['bodyLimitBytes'], numeric),
  FLOTILLA_POOL_IDEMPOTENCY_TTL_MS: at(['idempotency', 'ttlMs'], numeric),
  FLOTILLA_POOL_LOG_LEVEL: at(['logLevel']),
};

export function applyPoolEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, set] of Object.entries(POOL_ENV_VARS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') set(target, raw);
  }
}
