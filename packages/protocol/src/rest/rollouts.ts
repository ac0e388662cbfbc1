import { Type, type Static } from 'typebox';
import { DEVICE_ID_PATTERN, LABEL_VALUE_PATTERN } from '../ids.ts';
import { Labels, Name, Version, strict } from '../messages/common.ts';
import { ShadowGate } from '../messages/state.ts';
import { AbSplit } from '../messages/ab.ts';

/**
 * A stage's A/B gate (docs/ota.md, "A/B traffic"): the stage's devices serve `share` of requests
 * from the new version beside the old one. Once each arm has `minRequests` across the fleet (and
 * `minDurationSec` passed since the stage started), the server compares the arms: the rollout aborts
 * (FLT_ROLLOUT_AB_REGRESSION) when the candidate is significantly worse, otherwise the devices
 * activate the new version and the stage goes on as usual.
 */
export const RolloutAbGate = Type.Object(
  {
    share: AbSplit.properties.share,
    sticky: AbSplit.properties.sticky,
    minRequests: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
    minDurationSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400 })),
    /** Abort when the lower bound of candidate − control error rate exceeds this. */
    maxErrorRateDelta: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Abort when the candidate's mean latency is above this many times the control's, beyond the interval. */
    maxLatencyRatio: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
  },
  strict,
);
export type RolloutAbGate = Static<typeof RolloutAbGate>;

/**
 * REST shapes of staged rollouts (server/src/http/routes/rollouts.ts). Semantics in docs/rollouts.md.
 * Every object is strict: an unknown property is refused, never silently dropped.
 */

export const ROLLOUT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{2,63}$';
export const RolloutId = Type.String({ pattern: ROLLOUT_ID_PATTERN });

/** Which devices a rollout covers: `deviceIds` OR (every label of `labels` plus `group`). Only accepted devices count. */
export const RolloutTarget = Type.Object(
  {
    labels: Type.Optional(Labels),
    /** Shorthand for the label `group=<value>`. */
    group: Type.Optional(Type.String({ minLength: 1, pattern: LABEL_VALUE_PATTERN })),
    deviceIds: Type.Optional(Type.Array(Type.String({ pattern: DEVICE_ID_PATTERN }), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
  },
  strict,
);
export type RolloutTarget = Static<typeof RolloutTarget>;

/** One stage. `percent` or `count` (exactly one) is cumulative: how much of the target has been moved once this stage is done. */
export const RolloutStage = Type.Object(
  {
    percent: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    /** How long each device of the stage must stay healthy on the new version before it counts as succeeded. */
    bakeTimeSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400, default: 0 })),
    /** Percent of the stage's devices that must succeed before the next stage starts. */
    successThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100, default: 100 })),
    /** An operator must approve before this stage starts. */
    requireApproval: Type.Optional(Type.Boolean({ default: false })),
    /** Devices of this stage hold the new version in shadow on live traffic and activate it only past this gate. */
    shadow: Type.Optional(ShadowGate),
    /** Devices of this stage split live traffic between the old and the new version until the A/B gate decides. */
    ab: Type.Optional(RolloutAbGate),
  },
  strict,
);
export type RolloutStage = Static<typeof RolloutStage>;

/** Notifications per minute, starting at `baseRatePerMin` and multiplied by `incrementFactor` after every `incrementAfter` step. */
export const RolloutRate = Type.Object(
  {
    baseRatePerMin: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    incrementFactor: Type.Optional(Type.Number({ minimum: 1, maximum: 5, default: 1 })),
    incrementAfter: Type.Optional(
      Type.Object(
        {
          notified: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
          succeeded: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
        },
        strict,
      ),
    ),
    maxRatePerMin: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  strict,
);
export type RolloutRate = Static<typeof RolloutRate>;

export const RolloutFailureType = Type.Union([Type.Literal('failed'), Type.Literal('rejected'), Type.Literal('timedOut'), Type.Literal('any')]);
export type RolloutFailureType = Static<typeof RolloutFailureType>;

/** Abort when at least `minExecuted` devices have an outcome and `thresholdPercent` of them have this failure type. */
export const RolloutAbortRule = Type.Object(
  {
    failureType: RolloutFailureType,
    thresholdPercent: Type.Number({ minimum: 0, maximum: 100 }),
    minExecuted: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, default: 1 })),
  },
  strict,
);
export type RolloutAbortRule = Static<typeof RolloutAbortRule>;

/** A maintenance window: opens at each time the 5- or 6-field cron expression names, in `timeZone`, for `durationSec`. */
export const MaintenanceWindow = Type.Object(
  {
    cron: Type.String({ minLength: 9, maxLength: 128 }),
    durationSec: Type.Integer({ minimum: 60, maximum: 7 * 86_400 }),
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC' })),
  },
  strict,
);
export type MaintenanceWindow = Static<typeof MaintenanceWindow>;

/**
 * Health gate against the old version: a device on the new version whose error rate or latency
 * since activation is worse than the target devices still on the old version (by these limits)
 * fails with FLT_ROLLOUT_HEALTH_REGRESSION. Needs at least one limit.
 */
export const RolloutHealthGate = Type.Object(
  {
    /** Largest allowed error rate above the old version's, absolute (0.02 = two points more). */
    maxErrorRateDelta: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Largest allowed p50 and p95 latency as a multiple of the old version's (1.5 = 50% slower). */
    maxLatencyRatio: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
    /** Absolute error-rate bound; the only error check when no device is left on the old version. */
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Absolute p95 latency bound in ms; the only latency check when no device is left on the old version. */
    maxP95Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 600_000 })),
    /** Requests a device (and the old version's devices together) must have served before they are judged. */
    minRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, default: 20 })),
    /** Only old-version reports received within this many seconds form the baseline. */
    baselineWindowSec: Type.Optional(Type.Integer({ minimum: 10, maximum: 7 * 86_400, default: 900 })),
  },
  strict,
);
export type RolloutHealthGate = Static<typeof RolloutHealthGate>;

export const RolloutSpec = Type.Object(
  {
    /** Optional client-chosen id (a dry run returns the id its cohorts were computed for). */
    id: Type.Optional(RolloutId),
    name: Type.Optional(Type.String({ maxLength: 128 })),
    target: RolloutTarget,
    model: Name,
    version: Version,
    stages: Type.Array(RolloutStage, { minItems: 1, maxItems: 20 }),
    rate: Type.Optional(RolloutRate),
    abortRules: Type.Optional(Type.Array(RolloutAbortRule, { maxItems: 8 })),
    perDeviceTimeoutSec: Type.Optional(Type.Integer({ minimum: 10, maximum: 30 * 86_400, default: 3600 })),
    /** How many more times a failed or timed-out device is sent the new version before its outcome counts. */
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, default: 0 })),
    onAbort: Type.Optional(Type.Union([Type.Literal('pause'), Type.Literal('revert')], { default: 'pause' })),
    maintenanceWindow: Type.Optional(MaintenanceWindow),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 0 })),
    /** With a higher priority than an active rollout of the same model on the same devices, cancel that one instead of being refused. */
    preempt: Type.Optional(Type.Boolean({ default: false })),
    /** Devices that match the target later join the last stage. */
    continuous: Type.Optional(Type.Boolean({ default: false })),
    healthGate: Type.Optional(RolloutHealthGate),
  },
  strict,
);
export type RolloutSpec = Static<typeof RolloutSpec>;

export const RolloutState = Type.Union(
  ['running', 'awaitingApproval', 'paused', 'completed', 'cancelled', 'reverted', 'preempted'].map((s) => Type.Literal(s)),
);
export type RolloutStateName = 'running' | 'awaitingApproval' | 'paused' | 'completed' | 'cancelled' | 'reverted' | 'preempted';

export const ROLLOUT_DEVICE_STATES = ['pending', 'notified', 'succeeded', 'failed', 'rejected', 'timedOut', 'reverted', 'skipped'] as const;
export type RolloutDeviceState = (typeof ROLLOUT_DEVICE_STATES)[number];
export const RolloutDeviceStateSchema = Type.Union(ROLLOUT_DEVICE_STATES.map((s) => Type.Literal(s)));

const Count = Type.Integer({ minimum: 0 });

/** One stage's funnel: devices by current state, plus how many ever reached each step. */
export const StageFunnel = Type.Object(
  {
    stage: Type.Integer({ minimum: 0 }),
    size: Count,
    required: Count,
    counts: Type.Record(Type.String(), Count),
    /** Notified devices healthy on the new version and still inside their bake time. */
    baking: Count,
    reached: Type.Object({ notified: Count, healthy: Count, succeeded: Count }, strict),
    /**
     * Where the stage's notified devices are now, from their reported state: `waiting` (no report
     * about the new version yet), `downloading`, `verified`, `installed`, `activated`, `healthy`.
     */
    inFlight: Type.Optional(Type.Record(Type.String(), Count)),
    /** Devices of the stage that ended failed, rejected or timed out, by reason code. */
    failedBy: Type.Optional(Type.Record(Type.String(), Count)),
  },
  strict,
);

export const RolloutView = Type.Object(
  {
    id: RolloutId,
    name: Type.Union([Type.String(), Type.Null()]),
    model: Type.String(),
    version: Type.String(),
    state: RolloutState,
    stage: Type.Integer({ minimum: 0 }),
    stageStartedAt: Type.Union([Type.Integer(), Type.Null()]),
    reason: Type.Union([Type.String(), Type.Null()]),
    priority: Type.Integer(),
    createdBy: Type.String(),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
    finishedAt: Type.Union([Type.Integer(), Type.Null()]),
    targetCount: Count,
    counts: Type.Record(Type.String(), Count),
    funnel: Type.Optional(Type.Array(StageFunnel)),
    spec: Type.Unknown(),
  },
  strict,
);
export type RolloutView = Static<typeof RolloutView>;

export const RolloutList = Type.Object({ items: Type.Array(RolloutView), nextCursor: Type.Union([Type.String(), Type.Null()]) }, strict);

export const RolloutListQuery = Type.Object(
  {
    state: Type.Optional(RolloutState),
    model: Type.Optional(Name),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' })),
  },
  strict,
);
export type RolloutListQuery = Static<typeof RolloutListQuery>;

export const RolloutIdParams = Type.Object({ id: RolloutId }, strict);

export const RolloutCommandBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 256 })) }, strict);

export const RolloutDeviceView = Type.Object(
  {
    deviceId: Type.String(),
    stage: Type.Integer(),
    state: RolloutDeviceStateSchema,
    attempts: Type.Integer(),
    fromVersion: Type.Union([Type.String(), Type.Null()]),
    variant: Type.Union([Type.String(), Type.Null()]),
    notifiedAt: Type.Union([Type.Integer(), Type.Null()]),
    healthySince: Type.Union([Type.Integer(), Type.Null()]),
    activateAfter: Type.Union([Type.Integer(), Type.Null()]),
    deadlineAt: Type.Union([Type.Integer(), Type.Null()]),
    finishedAt: Type.Union([Type.Integer(), Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
  },
  strict,
);

export const RolloutDeviceListQuery = Type.Object(
  {
    state: Type.Optional(RolloutDeviceStateSchema),
    stage: Type.Optional(Type.Integer({ minimum: 0, maximum: 19 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' })),
  },
  strict,
);

export const RolloutDeviceList = Type.Object({ items: Type.Array(RolloutDeviceView), nextCursor: Type.Union([Type.String(), Type.Null()]) }, strict);

export const RolloutEventView = Type.Object(
  {
    id: Type.Integer(),
    ts: Type.Integer(),
    stage: Type.Union([Type.Integer(), Type.Null()]),
    kind: Type.String(),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Unknown(),
  },
  strict,
);
export const RolloutEventList = Type.Object({ items: Type.Array(RolloutEventView) }, strict);
export const RolloutEventQuery = Type.Object(
  {
    afterId: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
    devices: Type.Optional(Type.Boolean({ default: false })),
  },
  strict,
);

/** Dry run: who would be in each stage, what variant each gets, and how long it should take. */
export const DryRunResult = Type.Object(
  {
    id: RolloutId,
    targetCount: Count,
    stages: Type.Array(
      Type.Object(
        {
          stage: Type.Integer(),
          size: Count,
          cumulative: Count,
          required: Count,
          bakeTimeSec: Type.Integer(),
          requireApproval: Type.Boolean(),
          /** First devices of the stage in cohort order (at most 500). */
          devices: Type.Array(Type.Object({ deviceId: Type.String(), variant: Type.Union([Type.String(), Type.Null()]), note: Type.Optional(Type.String()) }, strict)),
          truncated: Type.Boolean(),
        },
        strict,
      ),
    ),
    conflicts: Type.Array(Type.Object({ rolloutId: Type.String(), priority: Type.Integer(), overlap: Count, action: Type.Union([Type.Literal('refuse'), Type.Literal('preempt')]) }, strict)),
    estimate: Type.Object(
      {
        durationSec: Type.Number({ minimum: 0 }),
        completesAt: Type.Integer(),
        approvalGates: Count,
        assumptions: Type.Array(Type.String()),
      },
      strict,
    ),
  },
  strict,
);
export type DryRunResult = Static<typeof DryRunResult>;
