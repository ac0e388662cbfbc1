import { Type, type Static } from 'typebox';
import { Name, Version, strict } from '../messages/common.ts';
import { DEVICE_ID_PATTERN } from '../ids.ts';

/** How far live traffic stands from a version's reference: `ok` < warn ≤ `warn` < threshold ≤ `drift`. */
export const DriftLevel = Type.Union([Type.Literal('insufficient'), Type.Literal('ok'), Type.Literal('warn'), Type.Literal('drift')]);
export type DriftLevel = Static<typeof DriftLevel>;

/** Population stability index of each summarized distribution; null where it cannot be compared. */
export const DriftScore = Type.Object(
  {
    /** Rows the score was computed over. */
    rows: Type.Integer({ minimum: 0 }),
    input: Type.Union([Type.Number(), Type.Null()]),
    confidence: Type.Union([Type.Number(), Type.Null()]),
    classes: Type.Union([Type.Number(), Type.Null()]),
    /** The largest of the three: what the thresholds are applied to. */
    psi: Type.Union([Type.Number(), Type.Null()]),
    level: DriftLevel,
  },
  strict,
);
export type DriftScore = Static<typeof DriftScore>;

export const DeviceDriftScore = Type.Object(
  {
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
    ...DriftScore.properties,
    /** When the last summary from this device arrived (server clock, ms). */
    updatedAt: Type.Integer({ minimum: 0 }),
  },
  strict,
);
export type DeviceDriftScore = Static<typeof DeviceDriftScore>;

/** GET /v1/models/:name/versions/:version/drift */
export const DriftReport = Type.Object(
  {
    model: Name,
    version: Version,
    /** False when the version was registered without `driftReference`: nothing can be scored. */
    hasReference: Type.Boolean(),
    warn: Type.Number(),
    threshold: Type.Number(),
    minRows: Type.Integer({ minimum: 0 }),
    /** Every device's rows pooled; null before any summary arrived. */
    fleet: Type.Union([DriftScore, Type.Null()]),
    devices: Type.Array(DeviceDriftScore),
  },
  strict,
);
export type DriftReport = Static<typeof DriftReport>;
