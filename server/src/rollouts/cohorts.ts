import { createHash } from 'node:crypto';
import type { NormalizedSpec } from './spec.ts';

/**
 * Cohort order: each device's place in a rollout is the sha256 of (rollout id, device id). It is
 * stable across restarts and across changes elsewhere in the fleet, and different for every rollout,
 * so the same devices are not always the canaries.
 */
export function cohortRank(rolloutId: string, deviceId: string): string {
  return createHash('sha256').update(rolloutId).update('\n').update(deviceId).digest('hex');
}

/** Device ids in cohort order for a rollout. */
export function cohortOrder(rolloutId: string, deviceIds: readonly string[]): Array<{ deviceId: string; rank: string }> {
  return deviceIds
    .map((deviceId) => ({ deviceId, rank: cohortRank(rolloutId, deviceId) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0));
}

/**
 * How many devices each stage reaches in total, for a target of `n`. Stages are cumulative: a stage
 * of 10% after one of 1% adds 9% of the target. A non-empty percent rounds up, so 1% of a small
 * fleet is still one canary.
 */
export function cumulativeSizes(stages: NormalizedSpec['stages'], n: number): number[] {
  const out: number[] = [];
  let prev = 0;
  for (const s of stages) {
    const want = s.percent !== null ? Math.ceil((n * s.percent) / 100 - 1e-9) : s.count!;
    prev = Math.max(prev, Math.min(n, want));
    out.push(prev);
  }
  return out;
}

/** Stage index of each cohort position, from the cumulative sizes; positions past the last stage get -1 (not moved). */
export function stageOfPosition(cumulative: readonly number[], position: number): number {
  for (let i = 0; i < cumulative.length; i++) if (position < cumulative[i]!) return i;
  return -1;
}

/** Devices a stage must see succeed: its threshold share of the devices it holds, rounded up. */
export function requiredSuccesses(size: number, thresholdPercent: number): number {
  return Math.ceil((size * thresholdPercent) / 100 - 1e-9);
}
