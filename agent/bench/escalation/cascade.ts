import { confidence } from '../../src/escalation/confidence.ts';
import { round } from '../stats.ts';

/** Edge and cloud probabilities for every test digit, with its label. */
export interface CascadeData {
  labels: Uint8Array;
  edge: Float32Array[];
  cloud: Float32Array[];
}

export interface CurvePoint {
  threshold: number;
  escalatedPct: number;
  accuracyPct: number;
}

export type PolicyName = 'max-prob' | 'margin' | 'entropy';

const argmax = (p: Float32Array): number => confidence(p).top;

/** Which digits a policy at a threshold sends to the cloud. */
export function escalates(policy: PolicyName, p: Float32Array, threshold: number): boolean {
  const c = confidence(p);
  if (policy === 'max-prob') return c.maxProb < threshold;
  if (policy === 'margin') return c.margin < threshold;
  return c.entropy > threshold;
}

/** Threshold → escalation rate and cascade accuracy (edge answer when kept, cloud answer when escalated). */
export function curve(data: CascadeData, policy: PolicyName, thresholds: readonly number[]): CurvePoint[] {
  const n = data.labels.length;
  return thresholds.map((threshold) => {
    let escalated = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const up = escalates(policy, data.edge[i]!, threshold);
      if (up) escalated++;
      const answer = argmax(up ? data.cloud[i]! : data.edge[i]!);
      if (answer === data.labels[i]) correct++;
    }
    return { threshold: round(threshold, 3), escalatedPct: round((100 * escalated) / n, 2), accuracyPct: round((100 * correct) / n, 2) };
  });
}

export function accuracy(probs: readonly Float32Array[], labels: Uint8Array): number {
  let correct = 0;
  probs.forEach((p, i) => {
    if (argmax(p) === labels[i]) correct++;
  });
  return round((100 * correct) / labels.length, 2);
}

/**
 * The operating point: among thresholds with at most `maxEscalatedPct` escalated and accuracy
 * within `maxGapPts` of cloud-only, the one escalating least; when none qualifies, the most
 * accurate one under the escalation cap (and `meetsTarget` says so).
 */
export function choose(points: readonly CurvePoint[], cloudOnlyPct: number, maxEscalatedPct = 20, maxGapPts = 0.5): CurvePoint & { meetsTarget: boolean } {
  const capped = points.filter((p) => p.escalatedPct <= maxEscalatedPct);
  const good = capped.filter((p) => p.accuracyPct >= cloudOnlyPct - maxGapPts).sort((a, b) => a.escalatedPct - b.escalatedPct);
  if (good[0]) return { ...good[0], meetsTarget: true };
  const best = [...capped].sort((a, b) => b.accuracyPct - a.accuracyPct)[0] ?? points[0]!;
  return { ...best, meetsTarget: false };
}
