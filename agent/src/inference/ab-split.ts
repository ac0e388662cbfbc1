import type { AbArmKpis, AbReport, AbSplit } from '@flotilla/protocol';
import type { Tensor } from './types.ts';

export type AbArm = 'control' | 'candidate';

/** Latencies kept per arm for the percentiles: the most recent ones, so a long split costs bounded memory. */
const LATENCY_WINDOW = 512;

/**
 * FNV-1a (32 bit) of the key, salted with the candidate version, as a fraction in [0, 1). The salt
 * reshuffles callers for each new candidate; for one candidate a key lands at one point, so a
 * larger share keeps every caller the smaller one had on the candidate.
 */
export function stickyPoint(key: string, salt: string): number {
  // A NUL between salt and key, so ("ab", "c") and ("a", "bc") differ.
  let h = fnv1a(0x811c9dc5, salt);
  h = fnv1a(h, '\u0000');
  h = fnv1a(h, key);
  // One more avalanche round: FNV's low bits alone spread short keys poorly.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 0x1_0000_0000;
}

function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** Top-1 probability per row of a score tensor; logits (values outside [0, 1] or rows not summing to 1) go through a softmax first. */
export function topProbabilities(t: Tensor): number[] {
  const d = t.data as unknown;
  if (!(ArrayBuffer.isView(d) && !(d instanceof DataView)) && !Array.isArray(d)) return [];
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return [];
  const data = d as ArrayLike<number>;
  if (data.length === 0 || typeof data[0] !== 'number') return [];
  const rows = t.shape.length > 1 ? Math.max(1, t.shape[0]!) : 1;
  const width = data.length / rows;
  if (!Number.isInteger(width) || width === 0) return [];
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    let sum = 0;
    let probs = true;
    for (let i = r * width; i < (r + 1) * width; i++) {
      const v = data[i]!;
      if (v > max) max = v;
      sum += v;
      if (!(v >= 0 && v <= 1)) probs = false;
    }
    if (!Number.isFinite(max)) continue;
    if (probs && Math.abs(sum - 1) < 1e-3) {
      out.push(max);
      continue;
    }
    let z = 0;
    for (let i = r * width; i < (r + 1) * width; i++) z += Math.exp(data[i]! - max);
    out.push(1 / z);
  }
  return out;
}

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** One arm's counters: sums and sums of squares, which pool across devices without the raw samples. */
export class ArmKpis {
  readonly version: string;
  requests = 0;
  errors = 0;
  latencyCount = 0;
  latencySumMs = 0;
  latencySumSqMs = 0;
  confidenceCount = 0;
  confidenceSum = 0;
  confidenceSumSq = 0;
  escalations = 0;
  readonly #latencies: number[] = [];

  constructor(version: string) {
    this.version = version;
  }

  success(latencyMs: number, outputs: readonly Tensor[]): void {
    this.requests++;
    this.latencyCount++;
    this.latencySumMs += latencyMs;
    this.latencySumSqMs += latencyMs * latencyMs;
    this.#latencies.push(latencyMs);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
    const first = outputs[0];
    if (!first) return;
    for (const p of topProbabilities(first)) {
      this.confidenceCount++;
      this.confidenceSum += p;
      this.confidenceSumSq += p * p;
    }
  }

  failure(): void {
    this.requests++;
    this.errors++;
  }

  report(): AbArmKpis {
    return {
      version: this.version,
      requests: this.requests,
      errors: this.errors,
      latencyCount: this.latencyCount,
      latencySumMs: this.latencySumMs,
      latencySumSqMs: this.latencySumSqMs,
      p50Ms: percentile(this.#latencies, 0.5),
      p95Ms: percentile(this.#latencies, 0.95),
      confidenceCount: this.confidenceCount,
      confidenceSum: this.confidenceSum,
      confidenceSumSq: this.confidenceSumSq,
      escalations: this.escalations,
    };
  }
}

/**
 * One model's A/B split between its active version (control) and its staged one (candidate):
 * which arm a request goes to, and what each arm did. A request with a sticky key is routed by the
 * key's hash; one without by the injected random draw.
 */
export class AbSplitRun {
  readonly model: string;
  readonly share: number;
  readonly sticky: string | undefined;
  readonly since: number;
  readonly control: ArmKpis;
  readonly candidate: ArmKpis;
  readonly #random: () => number;

  constructor(model: string, versions: { control: string; candidate: string }, split: AbSplit, since: number, random: () => number = Math.random) {
    this.model = model;
    if (!(split.share >= 0 && split.share <= 1)) throw new RangeError(`A/B share must be in [0, 1], got ${split.share}`);
    this.share = split.share;
    this.sticky = split.sticky;
    this.since = since;
    this.control = new ArmKpis(versions.control);
    this.candidate = new ArmKpis(versions.candidate);
    this.#random = random;
  }

  /** The arm for one request; `key` is the caller's sticky key when the split has one and the request carried it. */
  pick(key?: string): AbArm {
    if (this.share <= 0) return 'control';
    if (this.share >= 1) return 'candidate';
    const point = key !== undefined && this.sticky !== undefined ? stickyPoint(key, this.candidate.version) : this.#random();
    return point < this.share ? 'candidate' : 'control';
  }

  arm(which: AbArm): ArmKpis {
    return which === 'candidate' ? this.candidate : this.control;
  }

  /** The arm that served `version`, if either did. */
  armOf(version: string): ArmKpis | undefined {
    if (version === this.candidate.version) return this.candidate;
    if (version === this.control.version) return this.control;
    return undefined;
  }

  report(): AbReport {
    return {
      share: this.share,
      ...(this.sticky !== undefined && { sticky: this.sticky }),
      since: Math.max(0, Math.round(this.since)),
      control: this.control.report(),
      candidate: this.candidate.report(),
    };
  }
}
