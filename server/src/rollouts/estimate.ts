import type { NormalizedSpec } from './spec.ts';
import { currentRatePerMin } from './rate-ramp.ts';
import { requiredSuccesses } from './cohorts.ts';
import { MaintenanceWindowSchedule } from './cron-window.ts';

export interface RolloutEstimate {
  durationSec: number;
  completesAt: number;
  approvalGates: number;
  assumptions: string[];
}

/** Simulated seconds at most; past this the estimate says it stopped counting. */
const MAX_SIMULATED_SEC = 5_000_000;

/**
 * Estimated time for a rollout: notifications paced by the rate ramp (second by second, with the
 * same windows the engine uses), each stage waiting for its required devices to activate (at the
 * next maintenance window when there is one) and bake. Devices are assumed to report healthy as
 * soon as they may activate, and approvals to come at once.
 */
export function estimateRollout(spec: NormalizedSpec, stageSizes: readonly number[], now: number): RolloutEstimate {
  const assumptions = ['every device reports healthy on the new version as soon as it may activate', 'no device fails, is rejected or times out'];
  const window = spec.maintenanceWindow ? new MaintenanceWindowSchedule(spec.maintenanceWindow) : null;
  let approvalGates = 0;
  let t = 0; // seconds since now
  let notified = 0;
  let succeeded = 0;
  let capped = false;
  const sentAt: number[] = []; // per second offset, only with a rate
  for (let i = 0; i < spec.stages.length; i++) {
    const stage = spec.stages[i]!;
    if (i > 0 && stage.requireApproval) approvalGates++;
    const size = stageSizes[i] ?? 0;
    const required = requiredSuccesses(size, stage.successThreshold);
    let lastRequiredAt = t;
    if (!spec.rate) {
      notified += size;
    } else {
      let sent = 0;
      while (sent < size) {
        if (t > MAX_SIMULATED_SEC) {
          capped = true;
          break;
        }
        const rate = currentRatePerMin(spec.rate, { notified, succeeded });
        const lastMinute = sentAt.slice(Math.max(0, t - 59), t + 1).reduce((a, b) => a + b, 0);
        const inSecond = sentAt[t] ?? 0;
        const n = Math.min(size - sent, Math.max(0, Math.min(rate - lastMinute, Math.ceil(rate / 60) - inSecond)));
        if (n > 0) {
          sentAt[t] = inSecond + n;
          sent += n;
          notified += n;
          if (stage.bakeTimeSec === 0) succeeded += n;
          // The stage can finish once its required-th device is out.
          if (sent - n < required) lastRequiredAt = t;
        }
        if (sent < size) t++;
      }
    }
    let activation = now + lastRequiredAt * 1000;
    if (window && required > 0) {
      const w = window.currentOrNext(activation);
      if (w) activation = Math.max(activation, w.start);
    }
    const stageDone = (activation - now) / 1000 + (required > 0 ? stage.bakeTimeSec : 0);
    if (stage.bakeTimeSec > 0) succeeded += size;
    t = Math.max(t, Math.ceil(stageDone));
    if (capped) break;
  }
  if (spec.rate) assumptions.push(`notifications paced at ${spec.rate.baseRatePerMin}/min rising ×${spec.rate.incrementFactor} per step up to ${spec.rate.maxRatePerMin}/min`);
  if (window) assumptions.push(`activation only inside the maintenance window ${spec.maintenanceWindow!.cron} (${spec.maintenanceWindow!.timeZone})`);
  if (approvalGates > 0) assumptions.push(`${approvalGates} approval gate(s) approved at once`);
  if (capped) assumptions.push(`simulation stopped after ${MAX_SIMULATED_SEC} s; the rollout takes longer`);
  return { durationSec: t, completesAt: now + t * 1000, approvalGates, assumptions };
}
