import { Type, type Static } from 'typebox';
import { DEVICE_ID_PATTERN, LABEL_KEY_PATTERN } from '../ids.ts';
import { Labels, Name, Version, strict } from '../messages/common.ts';
import { Inventory } from '../messages/inventory.ts';
import { DesiredState, ReportedState, DesiredModel } from '../messages/state.ts';

export const DeviceStatus = Type.Union([
  Type.Literal('preauthorized'),
  Type.Literal('pending'),
  Type.Literal('accepted'),
  Type.Literal('rejected'),
  Type.Literal('revoked'),
]);

/** A device as the admin API shows it. */
export const DeviceView = Type.Object(
  {
    id: Type.String(),
    status: DeviceStatus,
    labels: Labels,
    online: Type.Boolean(),
    lastSeenAt: Type.Union([Type.Integer(), Type.Null()]),
    inventory: Type.Union([Inventory, Type.Null()]),
    desired: Type.Union([DesiredState, Type.Null()]),
    reported: Type.Union([ReportedState, Type.Null()]),
    reportedAt: Type.Union([Type.Integer(), Type.Null()]),
    /** reported.appliedGeneration === desired.generation */
    inSync: Type.Boolean(),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
    statusChangedAt: Type.Integer(),
  },
  strict,
);
export type DeviceView = Static<typeof DeviceView>;

export const DeviceListQuery = Type.Object(
  {
    status: Type.Optional(DeviceStatus),
    online: Type.Optional(Type.Boolean()),
    /** `key=value`, repeatable; all must match. */
    label: Type.Optional(Type.Union([Type.String({ maxLength: 130 }), Type.Array(Type.String({ maxLength: 130 }), { maxItems: 16 })])),
    /** With `version`: devices reporting this model at this version; alone: devices reporting the model at all. */
    model: Type.Optional(Name),
    version: Type.Optional(Version),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' })),
  },
  strict,
);
export type DeviceListQuery = Static<typeof DeviceListQuery>;

export const DeviceList = Type.Object(
  { items: Type.Array(DeviceView), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  strict,
);

export const DeviceIdParams = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) }, strict);

export const PreauthorizeRequest = Type.Object(
  { id: Type.String({ pattern: DEVICE_ID_PATTERN }), labels: Type.Optional(Labels) },
  strict,
);

export const LabelChange = Type.Object(
  {
    set: Type.Optional(Labels),
    remove: Type.Optional(Type.Array(Type.String({ pattern: LABEL_KEY_PATTERN }), { maxItems: 64 })),
  },
  strict,
);

export const DesiredRequest = Type.Object(
  {
    models: Type.Record(Name, DesiredModel, { maxProperties: 64, additionalProperties: false }),
    config: Type.Optional(DesiredState.properties.config),
  },
  strict,
);

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);

export const CreateApiToken = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9 ._-]+$' }), role: Role },
  strict,
);

export const CreateEnrollmentToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9 ._-]+$' }),
    /** Lifetime in seconds; absent for a token that does not expire. */
    ttlSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400 })),
  },
  strict,
);

export const AuditQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ maxLength: 128 })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    target: Type.Optional(Type.String({ maxLength: 128 })),
    since: Type.Optional(Type.Integer({ minimum: 0 })),
    until: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 32, pattern: '^[0-9]+$' })),
  },
  strict,
);

/** `GET /v1/me`: who the bearer token is, so a client (the web console) can offer only what its role allows. */
export const Principal = Type.Object(
  { tokenId: Type.String(), name: Type.String(), role: Role },
  strict,
);
export type Principal = Static<typeof Principal>;

const DeviceCount = Type.Integer({ minimum: 0 });

/** `GET /v1/fleet/summary`: fleet-wide counts, computed by the database instead of paging every device. */
export const FleetSummary = Type.Object(
  {
    /** Every device, whatever its status. */
    total: DeviceCount,
    byStatus: Type.Record(Type.String(), DeviceCount),
    /** Accepted devices connected now / not connected now. */
    online: DeviceCount,
    offline: DeviceCount,
    /** Accepted devices by the version of each model they report serving (null: none serving). */
    modelVersions: Type.Array(Type.Object({ model: Type.String(), version: Type.Union([Type.String(), Type.Null()]), devices: DeviceCount }, strict)),
    /** Accepted devices by the agent version in their inventory. */
    agentVersions: Type.Array(Type.Object({ version: Type.String(), devices: DeviceCount }, strict)),
  },
  strict,
);
export type FleetSummary = Static<typeof FleetSummary>;
