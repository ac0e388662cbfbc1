import type { AbComparison, ModelHealth } from '@flotilla/protocol';

/** A rollout's `healthGate`, defaults filled in (null: no limit of that kind). */
export interface HealthGateLimits {
  maxErrorRateDelta: number | null;
  maxLatencyRatio: number | null;
  maxErrorRate: number | null;
  maxP95Ms: number | null;
  minRequests: number;
  baselineWindowSec: number;
}

/** The old version's health, aggregated over the target devices still serving it. */
export interface HealthBaseline {
  devices: number;
  requests: number;
  errorRate: number;
  /** Request-weighted means of the devices' percentiles; null when no device had a latency sample. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface HealthRegression {
  /** Which limits were exceeded, e.g. `errorRate 0.31 > baseline 0.01 + 0.02`. */
  reasons: string[];
  observed: { requests: number; errorRate: number; p50Ms: number | null; p95Ms: number | null };
  /** null: no old-version devices to compare with, so only the absolute limits were applied. */
  baseline: HealthBaseline | null;
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000;

/**
 * Judges one device's health on the new version. Relative limits apply when the old version has a
 * baseline of at least `minRequests` requests; absolute limits apply always. A device that has served
 * fewer than `minRequests` is not judged yet (undefined), nor is one without health counters.
 */
export function judgeAgainstBaseline(limits: HealthGateLimits, health: ModelHealth | undefined, baseline: HealthBaseline | null): HealthRegression | undefined {
  if (!health || health.requests < limits.minRequests) return undefined;
  const errorRate = health.errors / health.requests;
  const base = baseline && baseline.requests >= limits.minRequests ? baseline : null;
  const reasons: string[] = [];
  if (base && limits.maxErrorRateDelta !== null && errorRate > base.errorRate + limits.maxErrorRateDelta) {
    reasons.push(`errorRate ${round(errorRate)} > baseline ${round(base.errorRate)} + ${limits.maxErrorRateDelta}`);
  }
  if (base && limits.maxLatencyRatio !== null) {
    for (const p of ['p50Ms', 'p95Ms'] as const) {
      const mine = health[p];
      const theirs = base[p];
      if (mine !== null && theirs !== null && theirs > 0 && mine > theirs * limits.maxLatencyRatio) {
        reasons.push(`${p} ${round(mine)} > ${limits.maxLatencyRatio} × baseline ${round(theirs)}`);
      }
    }
  }
  if (limits.maxErrorRate !== null && errorRate > limits.maxErrorRate) reasons.push(`errorRate ${round(errorRate)} > ${limits.maxErrorRate}`);
  if (limits.maxP95Ms !== null && health.p95Ms !== null && health.p95Ms > limits.maxP95Ms) reasons.push(`p95Ms ${round(health.p95Ms)} > ${limits.maxP95Ms}`);
  if (reasons.length === 0) return undefined;
  return { reasons, observed: { requests: health.requests, errorRate: round(errorRate), p50Ms: health.p50Ms, p95Ms: health.p95Ms }, baseline: base };
}

/** A stage's A/B gate, defaults filled in (null: no limit of that kind). */
export interface AbGateLimits {
  minRequests: number;
  minDurationSec: number;
  maxErrorRateDelta: number | null;
  maxLatencyRatio: number | null;
}

export type AbVerdict =
  /** Not enough evidence yet: an arm below `minRequests`, or the stage younger than `minDurationSec`. */
  | { kind: 'wait'; why: string }
  /** Enough evidence and no significant regression: the candidate may be activated. */
  | { kind: 'pass' }
  /** The candidate is significantly worse than the limits allow. */
  | { kind: 'regressed'; reasons: string[] };

/**
 * Judges a stage's fleet-wide A/B comparison. Only significant regressions count: the error rate
 * regresses when the lower bound of candidate − control (Newcombe's 95 % interval) is above
 * `maxErrorRateDelta`; latency when the lower bound of candidate − control mean latency (Welch) is
 * above (maxLatencyRatio − 1) × the control's mean, i.e. the candidate is slower than the ratio
 * allows even at the favourable end of the interval. `startedAt` and `now` come from the engine's clock.
 */
export function judgeAb(limits: AbGateLimits, comparison: AbComparison, startedAt: number, now: number): AbVerdict {
  const { control, candidate } = comparison.arms;
  if (control.requests < limits.minRequests || candidate.requests < limits.minRequests) {
    return { kind: 'wait', why: `requests per arm ${control.requests}/${candidate.requests} < ${limits.minRequests}` };
  }
  const ageMs = now - startedAt;
  if (ageMs < limits.minDurationSec * 1000) return { kind: 'wait', why: `stage ran ${Math.max(0, Math.round(ageMs / 1000))} s < ${limits.minDurationSec} s` };
  const reasons: string[] = [];
  const err = comparison.difference.errorRate;
  if (limits.maxErrorRateDelta !== null && err.low !== null && err.low > limits.maxErrorRateDelta) {
    reasons.push(`errorRate candidate − control ${round(err.estimate ?? 0)} [${round(err.low)}, ${round(err.high ?? 0)}] > ${limits.maxErrorRateDelta}`);
  }
  const lat = comparison.difference.meanLatencyMs;
  const base = control.meanLatencyMs.estimate;
  if (limits.maxLatencyRatio !== null && lat.low !== null && base !== null && base > 0 && lat.low > (limits.maxLatencyRatio - 1) * base) {
    reasons.push(`mean latency candidate − control ${round(lat.estimate ?? 0)} ms [${round(lat.low)}, ${round(lat.high ?? 0)}] > (${limits.maxLatencyRatio} − 1) × control ${round(base)} ms`);
  }
  return reasons.length > 0 ? { kind: 'regressed', reasons } : { kind: 'pass' };
}
