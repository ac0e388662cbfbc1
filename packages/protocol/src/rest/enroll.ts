import { Type, type Static } from 'typebox';
import { DEVICE_ID_PATTERN } from '../ids.ts';
import { Labels, strict } from '../messages/common.ts';
import { Inventory } from '../messages/inventory.ts';

/**
 * POST /v1/enroll. The device proves possession of the fleet token, and of a random enrollment
 * key it generated and keeps; only the holder of that key can later collect the credential, so a
 * leaked fleet token cannot be used to steal an enrolled device's identity.
 * The call is idempotent: a device repeats it until the answer is `accepted`.
 */
export const EnrollRequest = Type.Object(
  {
    enrollmentToken: Type.String({ minLength: 16, maxLength: 256 }),
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
    enrollmentKey: Type.String({ minLength: 32, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }),
    labels: Type.Optional(Labels),
    inventory: Type.Optional(Inventory),
  },
  strict,
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const MqttEndpoints = Type.Object(
  {
    /** mqtt://host:port */
    tcp: Type.String(),
    /** ws://host:port/mqtt */
    ws: Type.Optional(Type.String()),
  },
  strict,
);

/**
 * The longest wait a server asks a pending device for (`retryAfterSec`), and the longest
 * server-imposed wait an agent honours.
 */
export const MAX_ENROLL_RETRY_AFTER_SEC = 3600;

export const EnrollResponse = Type.Union([
  Type.Object({ status: Type.Literal('pending'), deviceId: Type.String(), retryAfterSec: Type.Integer() }, strict),
  Type.Object(
    {
      status: Type.Literal('accepted'),
      deviceId: Type.String(),
      /** Secret for MQTT (username = device id) and device HTTP calls. Shown once; the server keeps only a hash. */
      credential: Type.String(),
      mqtt: MqttEndpoints,
    },
    strict,
  ),
]);
export type EnrollResponse = Static<typeof EnrollResponse>;

/** Uniform error body of every REST error. */
export const ErrorBody = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  strict,
);
export type ErrorBody = Static<typeof ErrorBody>;
