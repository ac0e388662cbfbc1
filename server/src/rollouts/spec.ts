import { FlotillaError, RolloutSpec, type RolloutAbortRule, type RolloutTarget, type MaintenanceWindow, type ShadowGate } from '@flotilla/protocol';
import type { AbGateLimits, HealthGateLimits } from './health-gate.ts';
import { Compile } from 'typebox/compile';
import { MaintenanceWindowSchedule } from './cron-window.ts';

/** A spec with every default filled in, as stored with the rollout. */
export interface NormalizedSpec {
  name: string | null;
  target: RolloutTarget;
  model: string;
  version: string;
  /** `shadow`: devices of the stage hold the new version in shadow until it passes this gate (absent: no gate). */
  /** `ab`: devices of the stage split traffic between the old and the new version until the stage's A/B gate decides (absent: no split). */
  stages: Array<{ percent: number | null; count: number | null; bakeTimeSec: number; successThreshold: number; requireApproval: boolean; shadow?: ShadowGate; ab?: StageAb }>;
  rate: { baseRatePerMin: number; incrementFactor: number; incrementAfter: { notified: number | null; succeeded: number | null }; maxRatePerMin: number } | null;
  abortRules: Array<Required<RolloutAbortRule>>;
  perDeviceTimeoutSec: number;
  retries: number;
  onAbort: 'pause' | 'revert';
  maintenanceWindow: Required<MaintenanceWindow> | null;
  priority: number;
  preempt: boolean;
  continuous: boolean;
  /** Absent in specs stored before health gates existed. */
  healthGate?: HealthGateLimits | null;
}

/** A stage's A/B split and gate, defaults filled in. */
export type StageAb = AbGateLimits & { share: number; sticky?: string };

const validator = Compile(RolloutSpec);

function invalid(message: string, field: string): never {
  throw new FlotillaError('FLT_ROLLOUT_SPEC_INVALID', message, { field });
}

/**
 * Checks a spec (schema, then the rules a schema cannot say) and fills in defaults. The REST layer
 * validated the schema already; the engine checks again because it is also called directly.
 */
export function normalizeSpec(input: unknown, now: number): NormalizedSpec {
  if (!validator.Check(input)) {
    const first = validator.Errors(input)[0];
    throw new FlotillaError('FLT_ROLLOUT_SPEC_INVALID', `rollout spec does not match the schema: ${first?.instancePath ?? ''} ${first?.message ?? ''}`.trim(), {
      field: first?.instancePath ?? '',
    });
  }
  const spec = input as RolloutSpec;
  const t = spec.target;
  if (!t.deviceIds && !t.group && Object.keys(t.labels ?? {}).length === 0) invalid('target needs labels, a group or device ids', '/target');
  if (t.labels?.group !== undefined && t.group !== undefined && t.labels.group !== t.group) invalid('target.group contradicts target.labels.group', '/target/group');

  const stages = spec.stages.map((s, i) => {
    if ((s.percent === undefined) === (s.count === undefined)) invalid(`stage ${i} needs exactly one of percent or count`, `/stages/${i}`);
    if (s.ab && s.shadow) invalid(`stage ${i} may hold the candidate in shadow or split traffic with it, not both`, `/stages/${i}/ab`);
    const ab: StageAb | undefined = s.ab && {
      share: s.ab.share,
      ...(s.ab.sticky !== undefined && { sticky: s.ab.sticky }),
      minRequests: s.ab.minRequests,
      minDurationSec: s.ab.minDurationSec ?? 0,
      maxErrorRateDelta: s.ab.maxErrorRateDelta ?? null,
      maxLatencyRatio: s.ab.maxLatencyRatio ?? null,
    };
    return {
      percent: s.percent ?? null,
      count: s.count ?? null,
      bakeTimeSec: s.bakeTimeSec ?? 0,
      successThreshold: s.successThreshold ?? 100,
      requireApproval: s.requireApproval ?? false,
      ...(s.shadow ? { shadow: { share: s.shadow.share, minSamples: s.shadow.minSamples, minAgreement: s.shadow.minAgreement } } : {}),
      ...(ab && { ab }),
    };
  });
  // Percent stages are cumulative, so they may not shrink; counts are compared only among counts.
  for (let i = 1; i < stages.length; i++) {
    const a = stages[i - 1]!;
    const b = stages[i]!;
    if (a.percent !== null && b.percent !== null && b.percent < a.percent) invalid(`stage ${i} percent is below stage ${i - 1}`, `/stages/${i}/percent`);
    if (a.count !== null && b.count !== null && b.count < a.count) invalid(`stage ${i} count is below stage ${i - 1}`, `/stages/${i}/count`);
  }

  let rate: NormalizedSpec['rate'] = null;
  if (spec.rate) {
    const r = spec.rate;
    const max = r.maxRatePerMin ?? r.baseRatePerMin;
    if (max < r.baseRatePerMin) invalid('rate.maxRatePerMin is below rate.baseRatePerMin', '/rate/maxRatePerMin');
    const factor = r.incrementFactor ?? 1;
    if (factor > 1 && !r.incrementAfter?.notified && !r.incrementAfter?.succeeded) invalid('rate.incrementFactor needs rate.incrementAfter', '/rate/incrementAfter');
    rate = {
      baseRatePerMin: r.baseRatePerMin,
      incrementFactor: factor,
      incrementAfter: { notified: r.incrementAfter?.notified ?? null, succeeded: r.incrementAfter?.succeeded ?? null },
      maxRatePerMin: factor > 1 ? (r.maxRatePerMin ?? 1_000_000) : max,
    };
  }

  let window: NormalizedSpec['maintenanceWindow'] = null;
  if (spec.maintenanceWindow) {
    const w = spec.maintenanceWindow;
    window = { cron: w.cron, durationSec: w.durationSec, timeZone: w.timeZone ?? 'UTC' };
    MaintenanceWindowSchedule.check(window, now);
  }

  let healthGate: HealthGateLimits | null = null;
  if (spec.healthGate) {
    const g = spec.healthGate;
    if (g.maxErrorRateDelta === undefined && g.maxLatencyRatio === undefined && g.maxErrorRate === undefined && g.maxP95Ms === undefined) {
      invalid('healthGate needs at least one of maxErrorRateDelta, maxLatencyRatio, maxErrorRate, maxP95Ms', '/healthGate');
    }
    healthGate = {
      maxErrorRateDelta: g.maxErrorRateDelta ?? null,
      maxLatencyRatio: g.maxLatencyRatio ?? null,
      maxErrorRate: g.maxErrorRate ?? null,
      maxP95Ms: g.maxP95Ms ?? null,
      minRequests: g.minRequests ?? 20,
      baselineWindowSec: g.baselineWindowSec ?? 900,
    };
  }

  return {
    name: spec.name ?? null,
    target: t,
    model: spec.model,
    version: spec.version,
    stages,
    rate,
    abortRules: (spec.abortRules ?? []).map((r) => ({ failureType: r.failureType, thresholdPercent: r.thresholdPercent, minExecuted: r.minExecuted ?? 1 })),
    perDeviceTimeoutSec: spec.perDeviceTimeoutSec ?? 3600,
    retries: spec.retries ?? 0,
    onAbort: spec.onAbort ?? 'pause',
    maintenanceWindow: window,
    priority: spec.priority ?? 0,
    preempt: spec.preempt ?? false,
    continuous: spec.continuous ?? false,
    healthGate,
  };
}

/** The label selector a target implies (labels plus the group shorthand); empty when it has none. */
export function selectorOf(target: RolloutTarget): Record<string, string> {
  return { ...(target.labels ?? {}), ...(target.group !== undefined ? { group: target.group } : {}) };
}
