import { DRIFT_BINS, type DriftLevel, type DriftScore, type DriftSummary } from '@flotilla/protocol';

/**
 * Population stability index: Σ (a − e) · ln(a / e) over bins, with a and e the observed and
 * expected shares. Empty bins are floored at `epsilon` so a class the reference never saw scores
 * high but finite. Identical distributions give 0; 0.1 is a moderate shift, 0.2 a significant one.
 */
export const PSI_EPSILON = 1e-4;

export function psi(expected: readonly number[], actual: readonly number[], epsilon = PSI_EPSILON): number | null {
  const bins = Math.max(expected.length, actual.length);
  let eTotal = 0;
  let aTotal = 0;
  for (let i = 0; i < bins; i++) {
    eTotal += expected[i] ?? 0;
    aTotal += actual[i] ?? 0;
  }
  if (eTotal <= 0 || aTotal <= 0) return null;
  let sum = 0;
  for (let i = 0; i < bins; i++) {
    const e = Math.max((expected[i] ?? 0) / eTotal, epsilon);
    const a = Math.max((actual[i] ?? 0) / aTotal, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Pools summaries of the same version: counts add, input moments combine weighted by elements. */
export function mergeSummaries(parts: readonly DriftSummary[]): DriftSummary | undefined {
  const first = parts[0];
  if (!first) return undefined;
  const out: DriftSummary = {
    rows: 0,
    input: { lo: first.input.lo, hi: first.input.hi, elements: 0, mean: 0, std: 0, hist: new Array<number>(DRIFT_BINS).fill(0) },
    confidence: new Array<number>(DRIFT_BINS).fill(0),
    classes: [],
  };
  let sum = 0;
  let sumSq = 0;
  for (const p of parts) {
    out.rows += p.rows;
    // Input histograms over another range cannot be added bin by bin: those parts keep only their rows.
    if (p.input.lo === first.input.lo && p.input.hi === first.input.hi) {
      out.input.elements += p.input.elements;
      sum += p.input.mean * p.input.elements;
      sumSq += (p.input.std ** 2 + p.input.mean ** 2) * p.input.elements;
      p.input.hist.forEach((c, i) => (out.input.hist[i] = (out.input.hist[i] ?? 0) + c));
    }
    p.confidence.forEach((c, i) => (out.confidence[i] = (out.confidence[i] ?? 0) + c));
    p.classes.forEach((c, i) => {
      while (out.classes.length <= i) out.classes.push(0);
      out.classes[i] = (out.classes[i] ?? 0) + c;
    });
  }
  const n = out.input.elements;
  if (n > 0) {
    out.input.mean = sum / n;
    out.input.std = Math.sqrt(Math.max(0, sumSq / n - out.input.mean ** 2));
  }
  return out;
}

export interface DriftThresholds {
  warn: number;
  threshold: number;
  minRows: number;
}

export function levelOf(value: number | null, rows: number, t: DriftThresholds): DriftLevel {
  if (value === null || rows < t.minRows) return 'insufficient';
  return value >= t.threshold ? 'drift' : value >= t.warn ? 'warn' : 'ok';
}

/** Scores live traffic against the reference: a PSI per distribution, the largest one judged. */
export function scoreSummary(reference: DriftSummary, observed: DriftSummary, t: DriftThresholds): DriftScore {
  const sameRange = reference.input.lo === observed.input.lo && reference.input.hi === observed.input.hi;
  const input = sameRange && observed.input.elements > 0 ? psi(reference.input.hist, observed.input.hist) : null;
  const confidence = psi(reference.confidence, observed.confidence);
  const classes = psi(reference.classes, observed.classes);
  const values = [input, confidence, classes].filter((v): v is number => v !== null);
  const max = values.length > 0 ? Math.max(...values) : null;
  const round = (v: number | null) => (v === null ? null : Math.round(v * 1e6) / 1e6);
  return { rows: observed.rows, input: round(input), confidence: round(confidence), classes: round(classes), psi: round(max), level: levelOf(max, observed.rows, t) };
}
