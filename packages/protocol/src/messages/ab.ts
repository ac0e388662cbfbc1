import { Type, type Static } from 'typebox';
import { Timestamp, Version, strict } from './common.ts';

/**
 * A/B split of a candidate (docs/ota.md, "A/B traffic"): the device loads the entry's version beside
 * the active one and answers `share` of live requests from it until the server's desired entry drops
 * the split (activate) or names another version (abort). With `sticky`, a request carrying that
 * header or KServe request parameter is routed by a hash of its value, so one caller stays on one arm.
 */
export const AbSplit = Type.Object(
  {
    share: Type.Number({ minimum: 0, maximum: 1 }),
    /** Name of the request header (lower case) or KServe request parameter that holds the sticky key. */
    sticky: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_-]*$' })),
  },
  strict,
);
export type AbSplit = Static<typeof AbSplit>;

const Count = Type.Integer({ minimum: 0 });
const NonNegative = Type.Number({ minimum: 0 });

/**
 * What one arm served since the split started: sums and sums of squares, so the server can pool
 * devices and compute means, variances and intervals without the raw samples.
 */
export const AbArmKpis = Type.Object(
  {
    version: Version,
    requests: Count,
    errors: Count,
    /** Successful requests, and the sums of their latency (ms) and its square. */
    latencyCount: Count,
    latencySumMs: NonNegative,
    latencySumSqMs: NonNegative,
    p50Ms: Type.Union([NonNegative, Type.Null()]),
    p95Ms: Type.Union([NonNegative, Type.Null()]),
    /** Rows scored, and the sums of their top-1 probability and its square. */
    confidenceCount: Count,
    confidenceSum: NonNegative,
    confidenceSumSq: NonNegative,
    /** Requests this arm answered that were sent on to a cloud pool. */
    escalations: Count,
  },
  strict,
);
export type AbArmKpis = Static<typeof AbArmKpis>;

/** A device's A/B split so far, per arm. `control` is the active version, `candidate` the staged one. */
export const AbReport = Type.Object(
  {
    share: Type.Number({ minimum: 0, maximum: 1 }),
    sticky: Type.Optional(Type.String({ maxLength: 64 })),
    /** Device clock (ms since the epoch) when the split started. */
    since: Timestamp,
    control: AbArmKpis,
    candidate: AbArmKpis,
  },
  strict,
);
export type AbReport = Static<typeof AbReport>;
