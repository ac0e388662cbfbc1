import { MAX_ENROLL_RETRY_AFTER_SEC } from '@flotilla/protocol';
import { Type, type Static } from 'typebox';
import { DEFAULT_MAX_INPUT_UPLOAD_BYTES } from '../hard-examples/input-store.ts';

const strict = { additionalProperties: false } as const;
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const portWithDefault = (port: number) => Type.Integer({ minimum: 0, maximum: 65535, default: port });

const EmbeddedBroker = Type.Object({ mode: Type.Literal('embedded') }, strict);
const ExternalBroker = Type.Object(
  {
    mode: Type.Literal('external'),
    /** The broker the server connects to as a privileged client. */
    url: Type.String({ pattern: '^mqtts?://' }),
    /** The server's own broker account (the dynsec admin for mosquitto-dynsec). */
    username: Type.String({ minLength: 1, maxLength: 256 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    /**
     * How device credentials and ACLs reach the broker: pushed into Mosquitto's dynamic-security
     * plugin, or asked for by the broker through the HTTP hooks (EMQX, VerneMQ).
     */
    provisioner: Type.Union([Type.Literal('mosquitto-dynsec'), Type.Literal('http-hooks')], { default: 'mosquitto-dynsec' }),
    /** Secret the broker must send when it calls the HTTP hooks (bearer header or `token` query); required with http-hooks. */
    hookToken: Type.Optional(Type.String({ minLength: 24, maxLength: 256 })),
    /** How long a dynamic-security command or a publish to the broker may take before it fails. */
    requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000 }),
    /**
     * mosquitto-dynsec: how often the server sweeps dynsec back in line with the database
     * (accounts of revoked devices, roles left by a failed grant), besides every reconnect; 0: only on reconnect.
     */
    reconcileIntervalSec: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
  },
  strict,
);

const DiskArtifacts = Type.Object({ store: Type.Literal('disk') }, strict);
const S3Artifacts = Type.Object(
  {
    store: Type.Literal('s3'),
    /** S3 API endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://minio.internal:9000`). */
    endpoint: Type.String({ pattern: '^https?://' }),
    /** Signing region; S3-compatible stores that ignore regions accept `us-east-1`. */
    region: Type.String({ minLength: 1, maxLength: 64, default: 'us-east-1' }),
    /** Bucket holding the artifacts; it must exist (the server checks it at start). */
    bucket: Type.String({ minLength: 3, maxLength: 63 }),
    /** Access key of an account allowed Get, Put, Copy, Delete and multipart uploads on the bucket (docs/registry.md). */
    accessKeyId: Type.String({ minLength: 1, maxLength: 256 }),
    /** Its secret; presigned download URLs are signed with it, so it never leaves the server. */
    secretAccessKey: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Path-style URLs (`endpoint/bucket/key`), which MinIO, Ceph and most self-hosted stores need. */
    forcePathStyle: Type.Boolean({ default: false }),
    /** Key prefix for this server's blobs (`flotilla/`); empty keeps them at the bucket root. */
    prefix: Type.String({ pattern: '^[A-Za-z0-9._/-]*$', maxLength: 512, default: '' }),
    /**
     * How devices get the bytes: `proxy` streams them from the bucket through the server (Range
     * passed through); `redirect` answers an entitled device with a 307 to a presigned GET URL.
     */
    downloads: Type.Union([Type.Literal('proxy'), Type.Literal('redirect')], { default: 'proxy' }),
    /** Lifetime of a presigned download URL in redirect mode, in seconds. */
    presignTtlSec: Type.Integer({ minimum: 10, maximum: 86_400, default: 300 }),
    /** Multipart upload part size in MiB (S3's minimum is 5); raised when registry.maxArtifactBytes needs more than 10,000 parts. */
    partSizeMiB: Type.Integer({ minimum: 5, maximum: 5_120, default: 8 }),
    /** Blobs above this size (MiB) are copied to their content address part by part (UploadPartCopy); S3 refuses a single CopyObject above 5 GiB. */
    singleCopyLimitMiB: Type.Integer({ minimum: 5, maximum: 5_120, default: 5_120 }),
  },
  strict,
);

/** The whole server configuration. Defaults live here and nowhere else. */
export const ServerConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, default: './data' }),
    logLevel: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
    http: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: portWithDefault(8080),
        /** Largest JSON body accepted by any route that does not set its own limit. */
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 256 * 1024 }),
        /** URL devices use to reach this server; derived from host and port when absent. */
        publicUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
      },
      { ...strict, default: {} },
    ),
    mqtt: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        tcpPort: portWithDefault(1883),
        /** WebSocket listener (path /mqtt); null turns it off. */
        wsPort: Type.Union([Port, Type.Null()], { default: 8083 }),
        /** mqtt:// URL handed to devices at enrollment; derived from host and port when absent. */
        publicUrl: Type.Optional(Type.String({ pattern: '^mqtts?://' })),
      },
      { ...strict, default: {} },
    ),
    /** Model registry: artifact uploads and release manifests. */
    registry: Type.Object(
      {
        /** Largest artifact one upload may store; larger uploads are refused with 413 and leave nothing behind. */
        maxArtifactBytes: Type.Integer({ minimum: 1, maximum: 64 * 1024 ** 3, default: 2 * 1024 ** 3 }),
        /** How long a published manifest stays valid on devices (its `expiresAt`), in seconds. */
        manifestTtlSec: Type.Integer({ minimum: 60, maximum: 10 * 366 * 86_400, default: 365 * 86_400 }),
      },
      { ...strict, default: {} },
    ),
    /** Hard examples sent up by devices for retraining (docs/escalation.md). */
    hardExamples: Type.Object(
      {
        /**
         * Largest input one device upload may hold (`PUT /v1/device/hard-examples/{requestId}/input`,
         * inputs too large for an MQTT event); larger uploads are refused with 413
         * `FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE` and the device drops them.
         */
        maxInputUploadBytes: Type.Integer({ minimum: 1024, maximum: 1024 ** 3, default: DEFAULT_MAX_INPUT_UPLOAD_BYTES }),
      },
      { ...strict, default: {} },
    ),
    /** How long the server keeps device events, hard examples and audit entries (docs/operations.md "Retention"). */
    retention: Type.Object(
      {
        /** Days a device event (telemetry, OTA steps, reports) is kept after the server received it; 0 keeps them for ever. */
        deviceEventsDays: Type.Integer({ minimum: 0, maximum: 36_600, default: 30 }),
        /** Days a hard example and its uploaded input are kept after the server received them; 0 keeps them for ever. */
        hardExamplesDays: Type.Integer({ minimum: 0, maximum: 36_600, default: 90 }),
        /** Days an audit entry is kept; 0 keeps them for ever. A sweep that removes any leaves an entry saying how many. */
        auditDays: Type.Integer({ minimum: 0, maximum: 36_600, default: 365 }),
        /** Seconds between retention sweeps; 0 turns the periodic sweep off. */
        sweepIntervalSec: Type.Integer({ minimum: 0, maximum: 86_400, default: 3_600 }),
      },
      { ...strict, default: {} },
    ),
    /** Drift monitoring: live traffic against each version's registered reference (docs/registry.md "Drift"). */
    drift: Type.Object(
      {
        /** Population stability index at or above which traffic counts as drifting (0.2: a significant shift). */
        threshold: Type.Number({ minimum: 0, maximum: 100, default: 0.2 }),
        /** Index at or above which traffic is reported as `warn` (no event). */
        warn: Type.Number({ minimum: 0, maximum: 100, default: 0.1 }),
        /** Rows a device (or the fleet) must have sent for a version before it is scored; the newest windows are pooled up to it. */
        minRows: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 200 }),
      },
      { ...strict, default: {} },
    ),
    /** Abuse guards: failed-authentication throttling and MQTT connection limits (docs/operations.md "Abuse guards"). */
    guards: Type.Object(
      {
        /**
         * Source addresses never throttled nor limited: the server's own host (local tools, the demo,
         * a reverse proxy on the same host, which would otherwise make every client one address).
         */
        exemptAddresses: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 256, default: ['127.0.0.1', '::1'] }),
        /** Window in which failed authentications are counted, in seconds. */
        authFailureWindowSec: Type.Integer({ minimum: 1, maximum: 86_400, default: 60 }),
        /** Failed authentications (REST and MQTT) one address may make in the window before it is blocked. */
        authFailuresPerAddress: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
        /** Failures against one device id or token prefix, from any address, before addresses that failed on it are held back. */
        authFailuresPerIdentity: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
        /** First block of an address, in seconds; each further block doubles it. */
        authBlockSec: Type.Integer({ minimum: 1, maximum: 86_400, default: 30 }),
        /** Longest block, in seconds. */
        authMaxBlockSec: Type.Integer({ minimum: 1, maximum: 7 * 86_400, default: 900 }),
        /** Addresses (and, separately, identities) tracked at once; the least recently failing are forgotten first. */
        authTrackedEntries: Type.Integer({ minimum: 100, maximum: 10_000_000, default: 50_000 }),
        /** Embedded broker: new MQTT connections one address may open per second; more are closed unanswered. */
        mqttConnectsPerSec: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
        /** Embedded broker: connections one address may hold open before their CONNACK. */
        mqttPendingConnects: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 16 }),
        /** Embedded broker: bytes queued for a client that stopped reading before it is disconnected. */
        mqttOutgoingBufferBytes: Type.Integer({ minimum: 64 * 1024, maximum: 1024 ** 3, default: 4 * 1024 * 1024 }),
      },
      { ...strict, default: {} },
    ),
    /**
     * Which MQTT broker devices connect to: the embedded one (default), or an external broker the
     * server joins as a privileged client (docs/external-broker.md).
     */
    broker: Type.Union([EmbeddedBroker, ExternalBroker], { default: { mode: 'embedded' } }),
    /**
     * Where artifact blobs live: the data folder (default) or an S3-compatible bucket
     * (docs/registry.md, "Object storage").
     */
    artifacts: Type.Union([DiskArtifacts, S3Artifacts], { default: { store: 'disk' } }),
    /** Bootstrap admin API token. When absent and no admin token exists, one is generated and written to the data folder. */
    adminToken: Type.Optional(Type.String({ minLength: 24, maxLength: 256 })),
    /** Fleet enrollment token. When absent and none exists, one is generated and written to the data folder. */
    enrollmentToken: Type.Optional(Type.String({ minLength: 24, maxLength: 256 })),
    /** Accept every device that enrolls with a valid token, without an admin step (demo and lab fleets). */
    autoAccept: Type.Boolean({ default: false }),
    /** Seconds a pending device is told to wait before asking again. */
    enrollRetryAfterSec: Type.Integer({ minimum: 1, maximum: MAX_ENROLL_RETRY_AFTER_SEC, default: 5 }),
    /** Upper bound for a graceful shutdown; connections still open then are destroyed. */
    shutdownTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
  },
  strict,
);

export type ServerConfig = Static<typeof ServerConfigSchema>;

export type S3ArtifactsConfig = Static<typeof S3Artifacts>;

/** What callers may pass: every field optional, nested objects partial. */
export type ServerConfigInput = Partial<Omit<ServerConfig, 'http' | 'mqtt' | 'registry' | 'broker' | 'artifacts' | 'guards' | 'hardExamples' | 'retention'>> & {
  hardExamples?: Partial<ServerConfig['hardExamples']>;
  retention?: Partial<ServerConfig['retention']>;
  guards?: Partial<ServerConfig['guards']>;
  artifacts?: { store: 'disk' } | (Omit<S3ArtifactsConfig, 'region' | 'forcePathStyle' | 'prefix' | 'downloads' | 'presignTtlSec' | 'partSizeMiB' | 'singleCopyLimitMiB'> & Partial<S3ArtifactsConfig>);
  broker?: { mode: 'embedded' } | (Omit<Static<typeof ExternalBroker>, 'provisioner' | 'requestTimeoutMs' | 'reconcileIntervalSec'> & Partial<Static<typeof ExternalBroker>>);
  http?: Partial<ServerConfig['http']>;
  mqtt?: Partial<ServerConfig['mqtt']>;
  registry?: Partial<ServerConfig['registry']>;
};
