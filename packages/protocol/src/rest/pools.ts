import { Type, type Static } from 'typebox';
import { Name, Version, strict } from '../messages/common.ts';
import { EscalationPolicy } from '../messages/state.ts';

/**
 * Edge-to-cloud escalation on the wire (docs/escalation.md): the pool registry and per-model
 * policies of the admin API, and the hard-example event devices send through their outbox.
 */

const Endpoint = Type.String({ minLength: 1, maxLength: 512, pattern: '^https?://[^\\s]+$' });
const Region = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });

/** `PUT /v1/pools/:name` body: the pool as a whole (create or replace). */
export const PoolBody = Type.Object(
  {
    region: Region,
    endpoints: Type.Array(Endpoint, { minItems: 1, maxItems: 32, uniqueItems: true }),
    /** Model names the pool serves (as the pool knows them). */
    models: Type.Array(Name, { minItems: 1, maxItems: 256, uniqueItems: true }),
    /** Preference among pools of the same region: higher first. */
    weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    /** Requests per second the pool is sized for (informational; shown to operators). */
    capacity: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);
export type PoolBody = Static<typeof PoolBody>;

export const PoolView = Type.Object({
  name: Type.String(),
  region: Type.String(),
  endpoints: Type.Array(Type.String()),
  models: Type.Array(Type.String()),
  weight: Type.Integer(),
  capacity: Type.Integer(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});
export type PoolView = Static<typeof PoolView>;

export const PoolList = Type.Object({ items: Type.Array(PoolView) });
export const PoolNameParams = Type.Object({ name: Name }, strict);
export const PolicyModelParams = Type.Object({ model: Name }, strict);

export const EscalationPolicyView = Type.Object({
  model: Type.String(),
  policy: EscalationPolicy,
  updatedAt: Type.Integer(),
});
export type EscalationPolicyView = Static<typeof EscalationPolicyView>;
export const EscalationPolicyList = Type.Object({ items: Type.Array(EscalationPolicyView) });

/** Where an answer came from. */
export const AnsweredBy = Type.Union([Type.Literal('edge'), Type.Literal('cloud'), Type.Literal('edge-fallback')]);
export type AnsweredBy = Static<typeof AnsweredBy>;

/** Why a request was or was not escalated: the rule, and the measured value against its threshold. */
export const EscalationReason = Type.Object(
  {
    policy: Type.String({ minLength: 1, maxLength: 32 }),
    value: Type.Optional(Type.Number()),
    threshold: Type.Optional(Type.Number()),
  },
  strict,
);
export type EscalationReason = Static<typeof EscalationReason>;

/** A tensor in a hard example: raw little-endian bytes in base64 (BYTES tensors: their strings). */
export const ExampleTensor = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    datatype: Type.String({ minLength: 1, maxLength: 8 }),
    shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 8 }),
    b64: Type.Optional(Type.String()),
    strings: Type.Optional(Type.Array(Type.String())),
  },
  strict,
);
export type ExampleTensor = Static<typeof ExampleTensor>;

/** Kind of the device event that carries a hard example. */
export const HARD_EXAMPLE_EVENT = 'escalation.hard_example';

/**
 * An input too large for one MQTT message, uploaded on its own over HTTPS
 * (`PUT /v1/device/hard-examples/{requestId}/input`): the raw bytes of the event's `input`
 * tensors, concatenated in order, `bytes` long with this sha256 (hex). The event's `input` then
 * lists the tensors' names, datatypes and shapes without their data.
 */
export const HardExampleInputUpload = Type.Object(
  {
    bytes: Type.Integer({ minimum: 1 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  strict,
);
export type HardExampleInputUpload = Static<typeof HardExampleInputUpload>;

const EXAMPLE_ELEMENT_BYTES: Readonly<Record<string, number>> = { BOOL: 1, UINT8: 1, INT8: 1, INT16: 2, UINT16: 2, INT32: 4, UINT32: 4, INT64: 8, UINT64: 8, FP16: 2, BF16: 2, FP32: 4, FP64: 8 };

/** Raw bytes of a fixed-size tensor from its datatype and shape; undefined for BYTES or an unknown datatype. */
export function exampleTensorBytes(t: { datatype: string; shape: readonly number[] }): number | undefined {
  const size = Object.hasOwn(EXAMPLE_ELEMENT_BYTES, t.datatype) ? EXAMPLE_ELEMENT_BYTES[t.datatype] : undefined;
  return size === undefined ? undefined : t.shape.reduce((a, b) => a * b, size);
}

/** Header of the input upload carrying the sha256 (hex) of its body: a body that does not match is refused. */
export const HARD_EXAMPLE_DIGEST_HEADER = 'x-flotilla-sha256';

/** Path of a hard example's input upload (device credential, HTTP Basic). */
export function hardExampleInputPath(requestId: string): string {
  return `/v1/device/hard-examples/${encodeURIComponent(requestId)}/input`;
}

/** A hard example's request id as a path parameter: the same as `HardExampleData.requestId`. */
export const HardExampleUploadParams = Type.Object({ requestId: Type.String({ minLength: 1, maxLength: 64 }) }, strict);

/** Answer to an input upload: `stored` false when the same bytes were already stored (a retry). */
export const HardExampleUploadResult = Type.Object({
  requestId: Type.String(),
  bytes: Type.Integer(),
  sha256: Type.String(),
  stored: Type.Boolean(),
});
export type HardExampleUploadResult = Static<typeof HardExampleUploadResult>;

/**
 * `data` of a hard-example event. An input too large for one MQTT message is left out
 * (`inputOmittedBytes`) and, when the device could keep it, uploaded on its own (`inputUpload`).
 */
export const HardExampleData = Type.Object(
  {
    model: Name,
    version: Version,
    cloudModel: Type.Optional(Name),
    cloudVersion: Type.Optional(Type.String({ maxLength: 64 })),
    answeredBy: AnsweredBy,
    reason: EscalationReason,
    requestId: Type.String({ minLength: 1, maxLength: 64 }),
    /** Error code of the failed cloud call, for `edge-fallback`. */
    error: Type.Optional(Type.String({ maxLength: 64 })),
    input: Type.Array(ExampleTensor, { maxItems: 64 }),
    inputOmittedBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    inputUpload: Type.Optional(HardExampleInputUpload),
    edgeOutput: Type.Array(ExampleTensor, { maxItems: 64 }),
    cloudOutput: Type.Optional(Type.Array(ExampleTensor, { maxItems: 64 })),
    at: Type.Integer({ minimum: 0 }),
    /**
     * A late cloud answer: this event repeats an `edge-fallback` example sent before under the same
     * `requestId` and `at`, now with the cloud's answer in `cloudOutput`. The server attaches it to
     * the stored example once (the first answer wins) or stores it whole if the first never arrived.
     */
    late: Type.Optional(Type.Boolean()),
    /** Device time in ms when the late cloud answer arrived. */
    cloudAnsweredAt: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);
export type HardExampleData = Static<typeof HardExampleData>;

/**
 * `GET /v1/hard-examples` query. `since`: device time in ms (inclusive) of the oldest example;
 * `after`: the `seq` of the last example of the previous page.
 */
export const HardExampleQuery = Type.Object(
  {
    model: Type.Optional(Name),
    since: Type.Optional(Type.Integer({ minimum: 0 })),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('jsonl')])),
  },
  strict,
);

/** One stored hard example as exported. */
export const HardExampleView = Type.Object({
  seq: Type.Integer(),
  deviceId: Type.String(),
  eventId: Type.String(),
  model: Type.String(),
  version: Type.String(),
  cloudModel: Type.Union([Type.String(), Type.Null()]),
  cloudVersion: Type.Union([Type.String(), Type.Null()]),
  answeredBy: AnsweredBy,
  reason: EscalationReason,
  requestId: Type.String(),
  error: Type.Union([Type.String(), Type.Null()]),
  input: Type.Array(ExampleTensor),
  /** Raw bytes of an input that did not travel with the event and has not arrived by upload (yet); null once the tensors are here. */
  inputOmittedBytes: Type.Union([Type.Integer(), Type.Null()]),
  /** The separate upload of a large input, when the device made one: `arrived` once its bytes are stored and match. */
  inputUpload: Type.Optional(Type.Union([Type.Object({ bytes: Type.Integer(), sha256: Type.String(), arrived: Type.Boolean() }), Type.Null()])),
  edgeOutput: Type.Array(ExampleTensor),
  cloudOutput: Type.Union([Type.Array(ExampleTensor), Type.Null()]),
  /** Device time when a late cloud answer (after the budget) arrived; null when the cloud answered in time or never. */
  cloudAnsweredAt: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  at: Type.Integer(),
  receivedAt: Type.Integer(),
});
export type HardExampleView = Static<typeof HardExampleView>;
export const HardExampleList = Type.Object({ items: Type.Array(HardExampleView), nextAfter: Type.Union([Type.Integer(), Type.Null()]) });
