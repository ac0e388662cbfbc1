import { Type, type Static } from 'typebox';
import { Name, Version, strict } from '../messages/common.ts';

/** An estimate with its two-sided confidence interval; all null when there is nothing to estimate. */
export const AbInterval = Type.Object(
  {
    estimate: Type.Union([Type.Number(), Type.Null()]),
    low: Type.Union([Type.Number(), Type.Null()]),
    high: Type.Union([Type.Number(), Type.Null()]),
  },
  strict,
);
export type AbInterval = Static<typeof AbInterval>;

/** One arm pooled over the fleet's devices. */
export const AbArmSummary = Type.Object(
  {
    /** The versions seen on this arm (the control may differ from device to device). */
    versions: Type.Array(Version),
    devices: Type.Integer({ minimum: 0 }),
    requests: Type.Integer({ minimum: 0 }),
    errors: Type.Integer({ minimum: 0 }),
    escalations: Type.Integer({ minimum: 0 }),
    /** This arm's share of all requests of both arms. */
    share: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]),
    /** Wilson intervals. */
    errorRate: AbInterval,
    escalationRate: AbInterval,
    /** Normal-approximation intervals of the means. */
    meanLatencyMs: AbInterval,
    meanConfidence: AbInterval,
  },
  strict,
);
export type AbArmSummary = Static<typeof AbArmSummary>;

/** `GET /v1/models/:name/ab` and `GET /v1/rollouts/:id/ab`: both arms and candidate − control. */
export const AbComparison = Type.Object(
  {
    model: Name,
    /** The candidate version compared (null: no device reports a split of this model). */
    candidate: Type.Union([Version, Type.Null()]),
    /** Two-sided confidence level of every interval, e.g. 0.95. */
    level: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
    arms: Type.Object({ control: AbArmSummary, candidate: AbArmSummary }, strict),
    /** candidate − control: Newcombe's interval for the rates, Welch's for the means. */
    difference: Type.Object(
      {
        errorRate: AbInterval,
        escalationRate: AbInterval,
        meanLatencyMs: AbInterval,
        meanConfidence: AbInterval,
      },
      strict,
    ),
    /** Mean latency of the candidate over the control's (null until both have one). */
    latencyRatio: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  },
  strict,
);
export type AbComparison = Static<typeof AbComparison>;

export const AbQuery = Type.Object(
  {
    /** Compare this candidate version (default: the one most devices report). */
    candidate: Type.Optional(Version),
  },
  strict,
);
export type AbQuery = Static<typeof AbQuery>;
