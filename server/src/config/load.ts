import { readFileSync } from 'node:fs';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { FlotillaError } from '@flotilla/protocol';
import { ServerConfigSchema, type ServerConfig, type ServerConfigInput } from './schema.ts';

const validator = Compile(ServerConfigSchema);

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function intFromEnv(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9]+$/.test(raw)) throw new FlotillaError('FLT_CONFIG_INVALID', `${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Maps FLOTILLA_* environment variables onto the config shape. Only set variables appear. */
export function configFromEnv(env: NodeJS.ProcessEnv): ServerConfigInput {
  const out: ServerConfigInput = {};
  const http: ServerConfigInput['http'] = {};
  const mqtt: ServerConfigInput['mqtt'] = {};
  if (env.FLOTILLA_DATA_DIR) out.dataDir = env.FLOTILLA_DATA_DIR;
  if (env.FLOTILLA_LOG_LEVEL) out.logLevel = env.FLOTILLA_LOG_LEVEL as ServerConfig['logLevel'];
  if (env.FLOTILLA_ADMIN_TOKEN) out.adminToken = env.FLOTILLA_ADMIN_TOKEN;
  if (env.FLOTILLA_ENROLLMENT_TOKEN) out.enrollmentToken = env.FLOTILLA_ENROLLMENT_TOKEN;
  if (env.FLOTILLA_AUTO_ACCEPT) out.autoAccept = env.FLOTILLA_AUTO_ACCEPT === 'true' || env.FLOTILLA_AUTO_ACCEPT === '1';
  if (env.FLOTILLA_HTTP_HOST) http.host = env.FLOTILLA_HTTP_HOST;
  const httpPort = intFromEnv('FLOTILLA_HTTP_PORT', env.FLOTILLA_HTTP_PORT);
  if (httpPort !== undefined) http.port = httpPort;
  if (env.FLOTILLA_PUBLIC_URL) http.publicUrl = env.FLOTILLA_PUBLIC_URL;
  if (env.FLOTILLA_MQTT_HOST) mqtt.host = env.FLOTILLA_MQTT_HOST;
  const mqttPort = intFromEnv('FLOTILLA_MQTT_PORT', env.FLOTILLA_MQTT_PORT);
  if (mqttPort !== undefined) mqtt.tcpPort = mqttPort;
  if (env.FLOTILLA_MQTT_WS_PORT === 'off') mqtt.wsPort = null;
  else {
    const ws = intFromEnv('FLOTILLA_MQTT_WS_PORT', env.FLOTILLA_MQTT_WS_PORT);
    if (ws !== undefined) mqtt.wsPort = ws;
  }
  if (env.FLOTILLA_MQTT_PUBLIC_URL) mqtt.publicUrl = env.FLOTILLA_MQTT_PUBLIC_URL;
  const maxInputUpload = intFromEnv('FLOTILLA_HARD_EXAMPLE_MAX_INPUT_UPLOAD_BYTES', env.FLOTILLA_HARD_EXAMPLE_MAX_INPUT_UPLOAD_BYTES);
  if (maxInputUpload !== undefined) out.hardExamples = { maxInputUploadBytes: maxInputUpload };
  const retention: Record<string, number> = {};
  for (const [name, key] of [
    ['FLOTILLA_RETENTION_DEVICE_EVENTS_DAYS', 'deviceEventsDays'],
    ['FLOTILLA_RETENTION_HARD_EXAMPLES_DAYS', 'hardExamplesDays'],
    ['FLOTILLA_RETENTION_AUDIT_DAYS', 'auditDays'],
  ] as const) {
    const days = intFromEnv(name, env[name]);
    if (days !== undefined) retention[key] = days;
  }
  if (Object.keys(retention).length) out.retention = retention;
  if (Object.keys(http).length) out.http = http;
  if (Object.keys(mqtt).length) out.mqtt = mqtt;
  // External broker mode (docs/external-broker.md); resolveConfig names whatever is missing.
  const broker: Record<string, unknown> = {};
  if (env.FLOTILLA_BROKER_MODE) broker.mode = env.FLOTILLA_BROKER_MODE;
  if (env.FLOTILLA_BROKER_URL) broker.url = env.FLOTILLA_BROKER_URL;
  if (env.FLOTILLA_BROKER_USERNAME) broker.username = env.FLOTILLA_BROKER_USERNAME;
  if (env.FLOTILLA_BROKER_PASSWORD) broker.password = env.FLOTILLA_BROKER_PASSWORD;
  if (env.FLOTILLA_BROKER_PROVISIONER) broker.provisioner = env.FLOTILLA_BROKER_PROVISIONER;
  if (env.FLOTILLA_BROKER_HOOK_TOKEN) broker.hookToken = env.FLOTILLA_BROKER_HOOK_TOKEN;
  const brokerTimeout = intFromEnv('FLOTILLA_BROKER_REQUEST_TIMEOUT_MS', env.FLOTILLA_BROKER_REQUEST_TIMEOUT_MS);
  if (brokerTimeout !== undefined) broker.requestTimeoutMs = brokerTimeout;
  if (Object.keys(broker).length) out.broker = broker as ServerConfigInput['broker'];
  // Object storage for artifacts (docs/registry.md); resolveConfig names whatever is missing.
  const artifacts: Record<string, unknown> = {};
  if (env.FLOTILLA_ARTIFACT_STORE) artifacts.store = env.FLOTILLA_ARTIFACT_STORE;
  if (env.FLOTILLA_S3_ENDPOINT) artifacts.endpoint = env.FLOTILLA_S3_ENDPOINT;
  if (env.FLOTILLA_S3_REGION) artifacts.region = env.FLOTILLA_S3_REGION;
  if (env.FLOTILLA_S3_BUCKET) artifacts.bucket = env.FLOTILLA_S3_BUCKET;
  if (env.FLOTILLA_S3_ACCESS_KEY_ID) artifacts.accessKeyId = env.FLOTILLA_S3_ACCESS_KEY_ID;
  if (env.FLOTILLA_S3_SECRET_ACCESS_KEY) artifacts.secretAccessKey = env.FLOTILLA_S3_SECRET_ACCESS_KEY;
  if (env.FLOTILLA_S3_FORCE_PATH_STYLE) artifacts.forcePathStyle = env.FLOTILLA_S3_FORCE_PATH_STYLE === 'true' || env.FLOTILLA_S3_FORCE_PATH_STYLE === '1';
  if (env.FLOTILLA_S3_PREFIX) artifacts.prefix = env.FLOTILLA_S3_PREFIX;
  if (env.FLOTILLA_S3_DOWNLOADS) artifacts.downloads = env.FLOTILLA_S3_DOWNLOADS;
  const presignTtl = intFromEnv('FLOTILLA_S3_PRESIGN_TTL_SEC', env.FLOTILLA_S3_PRESIGN_TTL_SEC);
  if (presignTtl !== undefined) artifacts.presignTtlSec = presignTtl;
  if (Object.keys(artifacts).length) out.artifacts = artifacts as ServerConfigInput['artifacts'];
  return out;
}

function merge(base: ServerConfigInput, over: ServerConfigInput): ServerConfigInput {
  const merged: ServerConfigInput = { ...base, ...over, http: { ...base.http, ...over.http }, mqtt: { ...base.mqtt, ...over.mqtt } };
  // A file may hold the bucket and the environment only the secret: layer the fields, not the object.
  if (base.artifacts && over.artifacts) merged.artifacts = { ...base.artifacts, ...over.artifacts } as ServerConfigInput['artifacts'];
  if (base.guards && over.guards) merged.guards = { ...base.guards, ...over.guards };
  if (base.hardExamples && over.hardExamples) merged.hardExamples = { ...base.hardExamples, ...over.hardExamples };
  if (base.retention && over.retention) merged.retention = { ...base.retention, ...over.retention };
  return merged;
}

/**
 * Validates a configuration once, fills defaults and freezes it. Unknown keys, wrong types and
 * out-of-range values are refused with FLT_CONFIG_INVALID naming every problem.
 */
export function resolveConfig(input: unknown): Readonly<ServerConfig> {
  const withDefaults = Value.Default(ServerConfigSchema, structuredClone(input ?? {}));
  if (!validator.Check(withDefaults)) {
    const problems = validator.Errors(withDefaults).map((e) => `${e.instancePath || '/'} ${e.message}`);
    throw new FlotillaError('FLT_CONFIG_INVALID', `invalid server configuration: ${problems.join('; ')}`, { problems });
  }
  return deepFreeze(withDefaults as ServerConfig);
}

/** File (FLOTILLA_CONFIG or the given path) overlaid by environment, then resolved. */
export function loadConfig(opts: { env?: NodeJS.ProcessEnv; file?: string; overrides?: ServerConfigInput } = {}): Readonly<ServerConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.FLOTILLA_CONFIG;
  let fromFile: ServerConfigInput = {};
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as ServerConfigInput;
    } catch (err) {
      throw new FlotillaError('FLT_CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`);
    }
    if (!fromFile || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw new FlotillaError('FLT_CONFIG_INVALID', `config file ${file} must hold a JSON object`);
    }
  }
  return resolveConfig(merge(merge(fromFile, configFromEnv(env)), opts.overrides ?? {}));
}
