import type { AbArmKpis, AbArmSummary, AbComparison, AbReport } from '@flotilla/protocol';
import { Z95, meanDifference, meanInterval, proportionDifference, wilson, type Moments } from './intervals.ts';

/** One device's latest A/B report for a model. */
export interface DeviceAbReport {
  deviceId: string;
  report: AbReport;
}

interface Pooled {
  versions: Set<string>;
  devices: number;
  requests: number;
  errors: number;
  escalations: number;
  latency: Moments;
  confidence: Moments;
}

const empty = (): Pooled => ({ versions: new Set(), devices: 0, requests: 0, errors: 0, escalations: 0, latency: { n: 0, sum: 0, sumSq: 0 }, confidence: { n: 0, sum: 0, sumSq: 0 } });

function add(p: Pooled, arm: AbArmKpis): void {
  p.versions.add(arm.version);
  p.devices++;
  p.requests += arm.requests;
  p.errors += arm.errors;
  p.escalations += arm.escalations;
  p.latency.n += arm.latencyCount;
  p.latency.sum += arm.latencySumMs;
  p.latency.sumSq += arm.latencySumSqMs;
  p.confidence.n += arm.confidenceCount;
  p.confidence.sum += arm.confidenceSum;
  p.confidence.sumSq += arm.confidenceSumSq;
}

function summary(p: Pooled, total: number, z: number): AbArmSummary {
  return {
    versions: [...p.versions].sort(),
    devices: p.devices,
    requests: p.requests,
    errors: p.errors,
    escalations: p.escalations,
    share: total > 0 ? p.requests / total : null,
    errorRate: wilson(p.errors, p.requests, z),
    escalationRate: wilson(p.escalations, p.requests, z),
    meanLatencyMs: meanInterval(p.latency, z),
    meanConfidence: meanInterval(p.confidence, z),
  };
}

/** The candidate most devices report (ties: the lexically greatest), or null when none reports a split. */
export function commonCandidate(reports: readonly DeviceAbReport[]): string | null {
  const counts = new Map<string, number>();
  for (const r of reports) counts.set(r.report.candidate.version, (counts.get(r.report.candidate.version) ?? 0) + 1);
  let best: string | null = null;
  for (const [v, n] of counts) if (best === null || n > counts.get(best)! || (n === counts.get(best)! && v > best)) best = v;
  return best;
}

/**
 * Pools the devices' A/B reports of one model and candidate (sums across devices; the control arm
 * may mix versions where devices ran different ones) and compares candidate with control: Wilson
 * intervals for each arm's rates, normal intervals for its means, and candidate − control with
 * Newcombe's interval for rates and Welch's for means.
 */
export function compareArms(model: string, reports: readonly DeviceAbReport[], candidate?: string): AbComparison {
  const z = Z95;
  const version = candidate ?? commonCandidate(reports);
  const control = empty();
  const cand = empty();
  for (const { report } of reports) {
    if (report.candidate.version !== version) continue;
    add(control, report.control);
    add(cand, report.candidate);
  }
  const total = control.requests + cand.requests;
  const lat = meanDifference(cand.latency, control.latency, z);
  const controlLatency = control.latency.n > 0 ? control.latency.sum / control.latency.n : null;
  const candidateLatency = cand.latency.n > 0 ? cand.latency.sum / cand.latency.n : null;
  return {
    model,
    candidate: version,
    level: 0.95,
    arms: { control: summary(control, total, z), candidate: summary(cand, total, z) },
    difference: {
      errorRate: proportionDifference(cand.errors, cand.requests, control.errors, control.requests, z),
      escalationRate: proportionDifference(cand.escalations, cand.requests, control.escalations, control.requests, z),
      meanLatencyMs: lat,
      meanConfidence: meanDifference(cand.confidence, control.confidence, z),
    },
    latencyRatio: controlLatency && candidateLatency !== null ? candidateLatency / controlLatency : null,
  };
}
