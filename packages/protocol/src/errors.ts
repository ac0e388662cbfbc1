/**
 * The one error catalogue. Every code is stable once shipped and documented in docs/errors.md
 * (a test checks that). `status` is the HTTP status used when the error crosses the REST API.
 */
export const ERRORS = {
  // Generic request errors
  FLT_BAD_REQUEST: { status: 400, message: 'The request failed validation' },
  FLT_UNAUTHENTICATED: { status: 401, message: 'Missing or invalid credentials' },
  FLT_FORBIDDEN: { status: 403, message: 'The caller may not do this' },
  FLT_NOT_FOUND: { status: 404, message: 'No such resource' },
  FLT_CONFLICT: { status: 409, message: 'The resource is not in a state that allows this' },
  FLT_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than allowed' },
  FLT_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body has an unsupported content type' },
  FLT_INTERNAL: { status: 500, message: 'Internal error' },
  FLT_NOT_READY: { status: 503, message: 'The service is starting or stopping' },

  // Configuration
  FLT_CONFIG_INVALID: { status: 500, message: 'The configuration is invalid' },

  // Online database backup (server/src/db/backup.ts, docs/operations.md)
  FLT_BACKUP_FAILED: { status: 500, message: 'The database backup could not be made or did not verify' },

  // Enrollment and device identity
  FLT_ENROLL_TOKEN_INVALID: { status: 401, message: 'The fleet enrollment token is not valid' },
  FLT_ENROLL_KEY_MISMATCH: { status: 403, message: 'This device id is enrolled with a different enrollment key' },
  FLT_ENROLL_REJECTED: { status: 403, message: 'An admin rejected this device' },
  FLT_DEVICE_REVOKED: { status: 403, message: 'This device has been revoked' },
  FLT_DEVICE_ID_INVALID: { status: 400, message: 'Device ids are 1-64 characters of A-Z a-z 0-9 . _ - and start with a letter or digit' },
  FLT_DEVICE_NOT_FOUND: { status: 404, message: 'No such device' },
  FLT_DEVICE_STATE_CONFLICT: { status: 409, message: 'The device is not in a state that allows this transition' },
  FLT_TOKEN_NOT_FOUND: { status: 404, message: 'No such API token' },

  // MQTT broker policy (reported in logs and metrics; the client sees a refused CONNECT, SUBACK 128 or a closed connection)
  FLT_MQTT_AUTH_FAILED: { status: 401, message: 'MQTT connect refused: unknown device or bad credential' },
  FLT_MQTT_CLIENT_ID_INVALID: { status: 400, message: 'MQTT client id must equal the device id and contain no wildcard or separator' },
  FLT_MQTT_TOPIC_FORBIDDEN: { status: 403, message: 'Topic or filter outside the device prefix' },
  FLT_MQTT_WILL_FORBIDDEN: { status: 403, message: 'Last will must target the device own status topic' },
  FLT_MQTT_CLIENT_ID_TAKEN: { status: 409, message: 'Another session already holds this client id' },

  // Abuse guards (server/src/auth/failure-throttle.ts, server/src/broker/connection-guard.ts, docs/operations.md "Abuse guards")
  FLT_AUTH_THROTTLED: { status: 429, message: 'Too many failed authentication attempts from this address; retry after the time in Retry-After' },
  FLT_MQTT_CONNECT_FLOOD: { status: 429, message: 'MQTT connection closed unanswered: too many new or pending connections from this address' },
  FLT_MQTT_SLOW_CONSUMER: { status: 503, message: 'MQTT connection closed: the client stopped reading and its outgoing buffer passed the limit' },

  // External broker mode (docs/external-broker.md)
  FLT_BROKER_UNAVAILABLE: { status: 503, message: 'The external MQTT broker is not reachable from the server' },
  FLT_BROKER_PROVISION_FAILED: { status: 503, message: 'The external broker did not apply a device credential or ACL change' },

  // Device messages
  FLT_MSG_TOO_LARGE: { status: 413, message: 'MQTT payload exceeds the size limit' },
  FLT_MSG_MALFORMED_JSON: { status: 400, message: 'Payload is not valid JSON' },
  FLT_MSG_TOO_DEEP: { status: 400, message: 'Payload JSON nests deeper than allowed' },
  FLT_MSG_BAD_VERSION: { status: 400, message: 'Unsupported protocol version' },
  FLT_MSG_UNKNOWN_TYPE: { status: 400, message: 'Unknown message type' },
  FLT_MSG_WRONG_CHANNEL: { status: 400, message: 'Message type does not belong on this topic' },
  FLT_MSG_INVALID: { status: 400, message: 'Message does not match its schema' },

  // Agent
  FLT_AGENT_CONFIG_INVALID: { status: 500, message: 'The agent configuration is invalid' },
  FLT_AGENT_ENROLL_PENDING: { status: 202, message: 'Enrollment is waiting for an admin to accept the device' },
  // Agent daemon (agent/): identity file, enrollment answers, durable outbox
  FLT_AGENT_IDENTITY_INVALID: { status: 500, message: 'The agent identity file is unreadable or does not match its schema' },
  FLT_AGENT_ENROLL_BAD_RESPONSE: { status: 502, message: 'The enrollment answer from the server is not one the agent understands' },
  FLT_AGENT_EVENT_INVALID: { status: 400, message: 'The event does not fit the event message schema or the outbox' },
  FLT_AGENT_CLOSED: { status: 503, message: 'The agent is closed' },

  // Signed releases (packages/release): refusals when signing, attaching or verifying a release manifest
  FLT_RELEASE_MANIFEST_INVALID: { status: 400, message: 'The release manifest or its envelope does not match the schema' },
  FLT_RELEASE_BAD_SIGNATURE: { status: 400, message: 'A release signature does not verify against the signed content' },
  FLT_RELEASE_UNKNOWN_KEY: { status: 400, message: 'The release is not signed by any trusted key' },
  FLT_RELEASE_KEY_REVOKED: { status: 400, message: 'The signing key is retired, revoked or outside its validity window' },
  FLT_RELEASE_EXPIRED: { status: 400, message: 'The release manifest has expired' },
  FLT_RELEASE_ROLLBACK: { status: 409, message: 'The release counter is lower than one already accepted, or equal with different content' },
  FLT_RELEASE_MIX_AND_MATCH: { status: 409, message: 'The artifact or variant does not belong to this release manifest' },
  FLT_RELEASE_ROTATION_INVALID: { status: 400, message: 'The key rotation statement is malformed or would re-admit a retired key' },

  // Over-the-air artifacts (packages/release): refusals when checking a downloaded file against its manifest
  FLT_OTA_HASH_MISMATCH: { status: 422, message: 'The artifact sha256 differs from the signed manifest' },
  FLT_OTA_LENGTH_MISMATCH: { status: 422, message: 'The artifact length differs from the signed manifest' },
  FLT_OTA_INCOMPATIBLE: { status: 409, message: 'The variant does not match this device hardware' },
  // Agent over-the-air install (agent/src/ota): reported per model as `error` with state `failed`
  FLT_OTA_UNKNOWN_MODEL: { status: 404, message: 'The desired model or version is not published, or this device is not entitled to it' },
  FLT_OTA_DOWNLOAD_FAILED: { status: 502, message: 'The artifact or manifest could not be fetched from the server' },
  FLT_OTA_DOWNLOAD_STALLED: { status: 504, message: 'The download made no progress within the stall deadline, after every retry' },
  FLT_OTA_DISK_FULL: { status: 507, message: 'Not enough free disk for the new artifact plus the two slots kept' },
  FLT_OTA_LOAD_FAILED: { status: 422, message: 'The new model version failed to load or warm up; the previous version keeps serving' },
  FLT_OTA_SELFTEST_FAILED: { status: 422, message: 'The new model version failed its golden self-test; the previous version keeps serving' },
  FLT_OTA_HEALTH_FAILED: { status: 422, message: 'The new model version failed its health window after the switch and was rolled back' },
  FLT_OTA_UNTRUSTED: { status: 409, message: 'The device has no pinned release-signing keys yet, or a key rotation could not be applied' },
  // Shadow gate (docs/ota.md, "Shadow runs")
  FLT_OTA_SHADOW_DISAGREED: { status: 422, message: 'The candidate disagreed with the active version on live traffic in its shadow run and was not activated' },

  // KServe v2 wire codec (packages/kserve), the agent's local inference API and its KServe sidecar backend
  FLT_KSERVE_MALFORMED: { status: 400, message: 'The inference body is not JSON, or its binary framing (Inference-Header-Content-Length) is broken' },
  FLT_KSERVE_INVALID: { status: 400, message: 'The inference request or response does not match the KServe v2 schema' },
  FLT_KSERVE_DATATYPE: { status: 400, message: 'A tensor datatype is unknown or not supported' },
  FLT_KSERVE_SHAPE_MISMATCH: { status: 400, message: 'The number of tensor data elements does not match the shape' },
  FLT_KSERVE_BINARY_SIZE: { status: 400, message: 'A binary_data_size disagrees with the shape and datatype, or with the bytes that follow the JSON header' },
  FLT_KSERVE_TOO_LARGE: { status: 413, message: 'The inference body, a tensor or a count is over the configured limit' },
  FLT_KSERVE_MODEL_NOT_READY: { status: 503, message: 'The model version is not loaded and ready' },
  FLT_KSERVE_UNKNOWN_OUTPUT: { status: 400, message: 'A requested output is not an output of the model' },
  FLT_KSERVE_NAME_INVALID: { status: 400, message: 'The model name or version cannot be used as a model repository name' },
  FLT_KSERVE_ARTIFACT_MISSING: { status: 422, message: 'The model artifact to place in the model repository is missing or unreadable' },
  FLT_KSERVE_UNAVAILABLE: { status: 503, message: 'The KServe v2 server cannot be reached' },
  FLT_KSERVE_TIMEOUT: { status: 504, message: 'The KServe v2 server did not answer in time' },
  FLT_KSERVE_UPSTREAM_ERROR: { status: 502, message: 'The KServe v2 server answered with an error' },
  FLT_KSERVE_LOAD_FAILED: { status: 502, message: 'The KServe v2 server failed to load the model' },

  // Agent local inference (agent/src/inference): loading, requests, slots and hot swap
  FLT_INFER_LOAD_FAILED: { status: 422, message: 'The model file could not be loaded by any allowed execution provider' },
  FLT_INFER_BAD_INPUT: { status: 400, message: 'The input tensors do not match the model declared inputs' },
  FLT_INFER_UNKNOWN_MODEL: { status: 404, message: 'No such model or model version is loaded' },
  FLT_INFER_UNAVAILABLE: { status: 503, message: 'The model version is not serving (unloading, failed or closed)' },
  FLT_INFER_WORKER_EXITED: { status: 503, message: 'The inference worker thread exited while the request was in flight' },
  FLT_INFER_RUN_FAILED: { status: 500, message: 'The inference run failed' },
  FLT_INFER_SLOT_EMPTY: { status: 409, message: 'There is no staged or previous model version for this operation' },
  FLT_INFER_SELFTEST_FAILED: { status: 422, message: 'The model version failed its golden self-test' },

  // Cloud pool worker (packages/pool): dynamic batching queue, model repository, idempotent retries
  FLT_POOL_QUEUE_FULL: { status: 429, message: 'The model batching queue is full; retry after a moment' },
  FLT_POOL_QUEUE_TIMEOUT: { status: 504, message: 'The request waited in the batching queue past its timeout and was not run' },
  FLT_POOL_MODEL_NOT_IN_REPOSITORY: { status: 404, message: 'The model repository has no folder with a loadable version for this model' },
  FLT_POOL_MODEL_CONFIG_INVALID: { status: 422, message: 'The model config.json in the repository does not match its schema' },
  FLT_POOL_IDEMPOTENCY_MISMATCH: { status: 422, message: 'The Idempotency-Key was already used for a different request body' },

  // Model registry and artifacts (server/src/registry, server/src/artifacts)
  FLT_REGISTRY_MODEL_NOT_FOUND: { status: 404, message: 'No such model in the registry' },
  FLT_REGISTRY_VERSION_NOT_FOUND: { status: 404, message: 'No such version of this model' },
  FLT_REGISTRY_VARIANT_NOT_FOUND: { status: 404, message: 'No such variant in this version' },
  FLT_REGISTRY_EXISTS: { status: 409, message: 'A model, version or variant with this name already exists' },
  FLT_REGISTRY_IMMUTABLE: { status: 409, message: 'The version is published or awaiting its signature and can no longer change' },
  FLT_REGISTRY_NOT_PUBLISHABLE: { status: 409, message: 'The version cannot be published yet: it has no variants or a variant has no artifact' },
  FLT_REGISTRY_NOT_PUBLISHED: { status: 409, message: 'The version has no signed manifest yet' },
  FLT_REGISTRY_NOT_AWAITING_SIGNATURE: { status: 409, message: 'The version is not waiting for an offline signature' },
  FLT_REGISTRY_SERVER_KEY_UNTRUSTED: { status: 409, message: 'The server signing key is no longer trusted; sign offline or rotate keys' },
  FLT_REGISTRY_NO_INVENTORY: { status: 409, message: 'The device has not reported an inventory yet' },
  FLT_ARTIFACT_NOT_FOUND: { status: 404, message: 'No artifact with this sha256' },
  FLT_ARTIFACT_NOT_ENTITLED: { status: 403, message: 'This device may not download this artifact or manifest' },
  FLT_ARTIFACT_TOO_LARGE: { status: 413, message: 'The artifact is larger than the configured maximum' },
  FLT_ARTIFACT_INCOMPLETE: { status: 400, message: 'The upload ended before all announced bytes arrived; nothing was stored' },
  FLT_ARTIFACT_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested byte range lies outside the artifact' },

  // Staged rollouts (server/src/rollouts)
  FLT_ROLLOUT_NOT_FOUND: { status: 404, message: 'No such rollout' },
  FLT_ROLLOUT_SPEC_INVALID: { status: 400, message: 'The rollout spec is inconsistent (stages, target, rate or abort rules)' },
  FLT_ROLLOUT_WINDOW_INVALID: { status: 400, message: 'The maintenance window cron expression or time zone is invalid, or the window never opens' },
  FLT_ROLLOUT_NO_TARGETS: { status: 422, message: 'The rollout target matches no accepted device' },
  FLT_ROLLOUT_CONFLICT: { status: 409, message: 'An active rollout of the same model already covers some of these devices' },
  FLT_ROLLOUT_STATE_CONFLICT: { status: 409, message: 'The rollout is not in a state that allows this command' },
  FLT_ROLLOUT_UNKNOWN_VERSION: { status: 422, message: 'The registry holds the model but not this version, or has not published it' },
  FLT_ROLLOUT_UNKNOWN_MODEL: { status: 422, message: 'The registry has never heard of this model' },
  // Per-device outcomes recorded by a rollout (rollout device `error`), never an HTTP answer of their own
  FLT_ROLLOUT_DEVICE_TIMEOUT: { status: 504, message: 'The device did not report healthy on the new version within the per-device timeout' },
  FLT_ROLLOUT_DEVICE_FAILED: { status: 502, message: 'The device reported the new version failed without giving an error code' },
  FLT_ROLLOUT_DEVICE_REJECTED: { status: 409, message: 'The device went back to another version on its own' },
  FLT_ROLLOUT_HEALTH_REGRESSION: { status: 502, message: 'On the new version the device errs more or answers slower than the rollout health gate allows, compared with the old version' },
  // A/B gate of a rollout stage (docs/ota.md, "A/B traffic")
  FLT_ROLLOUT_AB_REGRESSION: { status: 502, message: 'In the stage A/B split the candidate errs significantly more or answers slower than the control, beyond the stage limits' },

  // Command line (packages/cli): refusals the CLI makes itself, before or after talking to the server
  FLT_CLI_USAGE: { status: 400, message: 'The command line is invalid: unknown command or option, missing argument, or an unreadable input file' },
  FLT_CLI_SERVER_UNREACHABLE: { status: 503, message: 'The server could not be reached at the configured URL' },
  FLT_CLI_BAD_RESPONSE: { status: 502, message: 'The server answered with something this CLI does not understand' },
  FLT_CLI_DIGEST_MISMATCH: { status: 422, message: 'The sha256 or length the server measured differs from what the CLI read from the local file' },
  FLT_CLI_MANIFEST_MISMATCH: { status: 409, message: 'The manifest offered for signing does not describe the version or the artifact that was pushed' },
  // CLI: rollouts
  FLT_CLI_ROLLOUT_NOT_COMPLETED: { status: 409, message: 'The watched rollout reached a final state other than completed (cancelled, reverted or pre-empted)' },

  // Edge-to-cloud escalation (agent/src/escalation, server/src/pools, server/src/hard-examples). An
  // agent answers a failed escalation with its local result (`edge-fallback`) and records the code.
  FLT_ESCALATION_NO_ROUTE: { status: 503, message: 'No cloud pool serves this model' },
  FLT_ESCALATION_BUDGET_EXCEEDED: { status: 504, message: 'The cloud did not answer within the time budget' },
  FLT_ESCALATION_CLOUD_UNAVAILABLE: { status: 503, message: 'No cloud endpoint could be reached (refused, reset, or every circuit open)' },
  FLT_ESCALATION_CLOUD_REFUSED: { status: 502, message: 'The cloud pool refused the request' },
  FLT_ESCALATION_BAD_ANSWER: { status: 502, message: 'The cloud pool answered with something that does not decode or lacks outputs' },
  FLT_ESCALATION_NO_SCORE: { status: 422, message: 'The policy output is missing or is not a vector of probabilities' },
  FLT_ESCALATION_POLICY_NOT_FOUND: { status: 404, message: 'No escalation policy is set for this model' },
  FLT_ESCALATION_EXAMPLE_INVALID: { status: 400, message: 'A hard-example event does not match its schema' },
  // Hard-example input uploads (server/src/hard-examples): inputs too large for an MQTT event.
  FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE: { status: 413, message: 'The hard-example input upload is larger than the server accepts' },
  FLT_HARD_EXAMPLE_UPLOAD_INVALID: { status: 400, message: 'The hard-example input upload is malformed: wrong length, wrong digest, or not raw bytes' },
  FLT_HARD_EXAMPLE_UPLOAD_CONFLICT: { status: 409, message: 'Different bytes were already stored for this hard example' },
  FLT_POOL_NOT_FOUND: { status: 404, message: 'No such pool' },

  // Drift monitoring (agent/src/inference/drift-summary.ts, server/src/drift)
  FLT_DRIFT_SUMMARY_INVALID: { status: 400, message: 'A drift summary event does not match its schema' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** An error with a stable code. `details` is safe to return to the caller. */
export class FlotillaError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERRORS[code].message);
    this.name = 'FlotillaError';
    this.code = code;
    this.statusCode = ERRORS[code].status;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}
