/**
 * FLOTILLA_* environment variables and where they land in the config. Values stay strings unless
 * they parse cleanly, so a bad number reaches the schema and fails there with the key's name.
 */
type Setter = (target: Record<string, unknown>, raw: string) => void;

function at(path: string[], convert: (raw: string) => unknown = (raw) => raw): Setter {
  return (target, raw) => {
    let node = target;
    for (const part of path.slice(0, -1)) {
      const next = node[part];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = convert(raw);
  };
}

function numeric(raw: string): unknown {
  const trimmed = raw.trim();
  return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : raw;
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** "k=v,k2=v2". A pair without '=' is kept whole as a key with an empty value, so the schema names it. */
export function parseLabels(raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of list(raw)) {
    const eq = pair.indexOf('=');
    if (eq < 0) labels[pair] = '';
    else labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

export const ENV_VARS: Readonly<Record<string, Setter>> = {
  FLOTILLA_SERVER_URL: at(['serverUrl']),
  FLOTILLA_DEVICE_ID: at(['deviceId']),
  FLOTILLA_ENROLLMENT_TOKEN: at(['enrollmentToken']),
  FLOTILLA_DATA_DIR: at(['dataDir']),
  FLOTILLA_HEARTBEAT_SEC: at(['heartbeatSec'], numeric),
  FLOTILLA_LOG_LEVEL: at(['logLevel']),
  FLOTILLA_MQTT_URL: at(['mqttUrl']),
  FLOTILLA_OUTBOX_MAX_ENTRIES: at(['outbox', 'maxEntries'], numeric),
  FLOTILLA_OUTBOX_MAX_BYTES: at(['outbox', 'maxBytes'], numeric),
  FLOTILLA_EXECUTION_PROVIDERS: at(['inventory', 'providers'], list),
  FLOTILLA_LOCAL_API_HOST: at(['localApi', 'host']),
  FLOTILLA_LOCAL_API_PORT: at(['localApi', 'port'], numeric),
  FLOTILLA_ESCALATION_INPUT_SPOOL_MAX_BYTES: at(['escalation', 'inputSpoolMaxBytes'], numeric),
  FLOTILLA_INFERENCE_CACHE_MAX_BYTES: at(['inference', 'cache', 'maxBytes'], numeric),
  FLOTILLA_OTA_HEALTH_WINDOW_MS: at(['ota', 'health', 'windowMs'], numeric),
  FLOTILLA_OTA_HEALTH_MIN_REQUESTS: at(['ota', 'health', 'minRequests'], numeric),
  FLOTILLA_OTA_HEALTH_REPORT_MS: at(['ota', 'healthReportMs'], numeric),
  FLOTILLA_DRIFT_ENABLED: at(['drift', 'enabled'], (raw) => (raw === 'true' ? true : raw === 'false' ? false : raw)),
  FLOTILLA_DRIFT_INTERVAL_MS: at(['drift', 'intervalMs'], numeric),
  // Labels from the environment are merged over those in the file.
  FLOTILLA_LABELS: (target, raw) => {
    const current = target.labels;
    const base = current !== null && typeof current === 'object' && !Array.isArray(current) ? current : {};
    target.labels = { ...base, ...parseLabels(raw) };
  },
};

export function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, set] of Object.entries(ENV_VARS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') set(target, raw);
  }
}
