import { Type, type Static } from 'typebox';
import { Generation, Name, Timestamp, Version, strict } from './common.ts';
import { AbReport, AbSplit } from './ab.ts';

/**
 * Shadow gate of a candidate (docs/ota.md, "Shadow runs"): the device loads the candidate beside the
 * active version, mirrors `share` of live requests to it (answers always come from the active one),
 * and activates it only once `minSamples` mirrored requests agree on top-1 at least `minAgreement`.
 */
export const ShadowGate = Type.Object(
  {
    share: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
    minSamples: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    minAgreement: Type.Number({ minimum: 0, maximum: 1 }),
  },
  strict,
);
export type ShadowGate = Static<typeof ShadowGate>;

/** What the server wants one model on the device to be. */
export const DesiredModel = Type.Object(
  {
    version: Version,
    /** Hold the candidate in shadow until it proves itself on live traffic. */
    shadow: Type.Optional(ShadowGate),
    /** Serve a share of live requests from the candidate beside the active version (A/B traffic). */
    ab: Type.Optional(AbSplit),
  },
  { additionalProperties: true },
);

/**
 * Escalation policy for one model (docs/escalation.md), set centrally. Rules that look at the input
 * (mode, inputSize) decide before local inference; score rules (maxProb, margin, entropy) and the
 * random audit after it, on the output named `output` (default: the first output).
 */
export const EscalationPolicy = Type.Object(
  {
    /** `policy` applies the rules below; `always-local` never escalates; `always-cloud` always does. */
    mode: Type.Optional(Type.Union([Type.Literal('policy'), Type.Literal('always-local'), Type.Literal('always-cloud')])),
    /** Escalate when the top probability is below this. */
    maxProbBelow: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Escalate when top-1 minus top-2 probability is below this. */
    marginBelow: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Escalate when the normalized entropy (−Σ p log p / log K) is above this. */
    entropyAbove: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Fraction of the remaining requests escalated at random, to audit the edge model. */
    auditRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Escalate, without running locally first, inputs whose raw tensor bytes exceed this. */
    inputBytesAbove: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Output holding the class probabilities. */
    output: Type.Optional(Name),
    /** Model name at the pools (default: the same name). */
    cloudModel: Type.Optional(Name),
    /** Time budget of one escalated request in ms (default 200). */
    budgetMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 })),
    /** Which hard examples the device keeps for upload (default `all` escalated ones). */
    keepExamples: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('fallback'), Type.Literal('none')])),
  },
  strict,
);
export type EscalationPolicy = Static<typeof EscalationPolicy>;

/** One pool a device may send a model's hard requests to, in preference order. */
export const EscalationRoute = Type.Object(
  {
    pool: Name,
    region: Type.Optional(Type.String({ maxLength: 64 })),
    endpoints: Type.Array(Type.String({ minLength: 1, maxLength: 512, pattern: '^https?://' }), { minItems: 1, maxItems: 32 }),
  },
  strict,
);
export type EscalationRoute = Static<typeof EscalationRoute>;

/** A model's escalation section of the desired state: its policy and the pools serving it, best first. */
export const ModelEscalation = Type.Object(
  {
    policy: EscalationPolicy,
    routes: Type.Array(EscalationRoute, { maxItems: 16 }),
  },
  strict,
);
export type ModelEscalation = Static<typeof ModelEscalation>;

/**
 * Desired state: written by the server, retained on the device's `desired` topic.
 * `generation` increases with every change; the agent reports which one it has applied.
 */
export const DesiredState = Type.Object(
  {
    generation: Generation,
    models: Type.Record(Name, DesiredModel, { maxProperties: 64, additionalProperties: false }),
    config: Type.Optional(
      Type.Object(
        {
          heartbeatSec: Type.Optional(Type.Integer({ minimum: 5, maximum: 3600 })),
        },
        strict,
      ),
    ),
    /** Per-model escalation policy and routing, computed by the server (docs/escalation.md). */
    escalation: Type.Optional(Type.Record(Name, ModelEscalation, { maxProperties: 64, additionalProperties: false })),
  },
  strict,
);
export type DesiredState = Static<typeof DesiredState>;

export const ModelRunState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('downloading'),
  Type.Literal('verified'),
  Type.Literal('installed'),
  Type.Literal('activated'),
  Type.Literal('healthy'),
  Type.Literal('failed'),
]);

/** A shadow run so far: mirrored requests, top-1 agreement, output distance, latency of each version. */
export const ShadowReport = Type.Object(
  {
    candidate: Version,
    samples: Type.Integer({ minimum: 0 }),
    /** Share of samples where both versions picked the same top-1 class (null before the first). */
    agreement: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]),
    /** Mean absolute difference between the two versions' outputs, element by element. */
    meanAbsDiff: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    activeP50Ms: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    candidateP50Ms: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    /** Mirrors dropped because the candidate was still busy with earlier ones. */
    dropped: Type.Integer({ minimum: 0 }),
  },
  strict,
);
export type ShadowReport = Static<typeof ShadowReport>;

/**
 * What the serving version did since it became active on the device (or since the agent restarted
 * with it): the server's rollout health gate compares devices on a new version with those still on
 * the old one (docs/rollouts.md). Latency percentiles cover the most recent successful requests.
 */
export const ModelHealth = Type.Object(
  {
    /** Device clock (ms since the epoch) when this version became active. */
    since: Timestamp,
    requests: Type.Integer({ minimum: 0 }),
    errors: Type.Integer({ minimum: 0 }),
    p50Ms: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    p95Ms: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  },
  strict,
);
export type ModelHealth = Static<typeof ModelHealth>;

export const ReportedModel = Type.Object(
  {
    /** The version actually serving traffic, or null when none is. */
    version: Type.Union([Version, Type.Null()]),
    state: ModelRunState,
    provider: Type.Optional(Type.String({ maxLength: 32 })),
    error: Type.Optional(Type.String({ maxLength: 64 })),
    /** Health counters of `version` since its activation; absent when nothing serves or the agent does not count. */
    health: Type.Optional(ModelHealth),
    /** The candidate's shadow run, while it is held in shadow and after the gate decided. */
    shadow: Type.Optional(ShadowReport),
    /** The candidate's A/B split, per arm, while it runs. */
    ab: Type.Optional(AbReport),
  },
  { additionalProperties: true },
);

export const ReportedState = Type.Object(
  {
    /** The desired generation this report reflects. */
    appliedGeneration: Generation,
    models: Type.Record(Name, ReportedModel, { maxProperties: 64, additionalProperties: false }),
  },
  strict,
);
export type ReportedState = Static<typeof ReportedState>;
