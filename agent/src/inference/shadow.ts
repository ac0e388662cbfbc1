import type { ShadowReport } from '@flotilla/protocol';
import type { Tensor } from './types.ts';

/** Latencies kept per version for the p50: the most recent ones, so a long run costs bounded memory. */
const LATENCY_WINDOW = 512;

function flat(t: Tensor): ArrayLike<number> | undefined {
  const d = t.data as unknown;
  if (Array.isArray(d)) return typeof d[0] === 'string' ? undefined : (d as number[]);
  if (ArrayBuffer.isView(d) && !(d instanceof DataView)) {
    // BigInt arrays carry class ids, not scores; they are compared as numbers.
    if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
    return d as unknown as ArrayLike<number>;
  }
  return undefined;
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function argmax(data: ArrayLike<number>, from: number, to: number): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (data[i]! > data[best]!) best = i;
  return best - from;
}

/**
 * What a shadow run has seen: per mirrored row, whether both versions picked the same top-1 class
 * of the first output, the mean absolute difference over every output element, and each version's
 * latency. Rows of a batch count as samples one by one.
 */
export class ShadowAccumulator {
  readonly candidate: string;
  #samples = 0;
  #agreed = 0;
  #absDiffSum = 0;
  #elements = 0;
  #dropped = 0;
  readonly #activeMs: number[] = [];
  readonly #candidateMs: number[] = [];

  constructor(candidate: string) {
    this.candidate = candidate;
  }

  /** One mirrored request: the active version's outputs and the candidate's, in the same output order. */
  record(active: readonly Tensor[], candidate: readonly Tensor[], activeMs: number, candidateMs: number): void {
    push(this.#activeMs, activeMs);
    push(this.#candidateMs, candidateMs);
    for (let o = 0; o < active.length; o++) {
      const a = active[o]!;
      const c = candidate.find((t) => t.name === a.name) ?? candidate[o];
      const ad = flat(a);
      const cd = c ? flat(c) : undefined;
      if (!ad || !cd || ad.length !== cd.length || ad.length === 0) continue;
      for (let i = 0; i < ad.length; i++) this.#absDiffSum += Math.abs(ad[i]! - cd[i]!);
      this.#elements += ad.length;
      if (o !== 0) continue;
      // Top-1 per row: the leading dimension is the batch when the output has more than one.
      const rows = a.shape.length > 1 ? Math.max(1, a.shape[0]!) : 1;
      const width = ad.length / rows;
      if (!Number.isInteger(width)) continue;
      for (let r = 0; r < rows; r++) {
        this.#samples++;
        if (argmax(ad, r * width, (r + 1) * width) === argmax(cd, r * width, (r + 1) * width)) this.#agreed++;
      }
    }
  }

  /** A mirrored request the candidate failed on: a sample that did not agree. */
  fail(): void {
    this.#samples++;
  }

  /** A request that was not mirrored because the candidate was busy. */
  drop(): void {
    this.#dropped++;
  }

  get samples(): number {
    return this.#samples;
  }

  report(): ShadowReport {
    return {
      candidate: this.candidate,
      samples: this.#samples,
      agreement: this.#samples === 0 ? null : this.#agreed / this.#samples,
      meanAbsDiff: this.#elements === 0 ? null : this.#absDiffSum / this.#elements,
      activeP50Ms: median(this.#activeMs),
      candidateP50Ms: median(this.#candidateMs),
      dropped: this.#dropped,
    };
  }
}

function push(window: number[], value: number): void {
  window.push(value);
  if (window.length > LATENCY_WINDOW) window.shift();
}

export interface ShadowOptions {
  /** Share of the active version's answered requests mirrored to the candidate, (0, 1]. */
  share: number;
  /** Mirrors running at once; a request arriving while they are all busy is dropped, never queued. */
  maxInFlight?: number;
}

/** Copies tensors whose buffers the caller is about to hand over (transferred inputs are detached afterwards). */
export function cloneTensors(tensors: readonly Tensor[]): Tensor[] {
  return tensors.map((t) => {
    const d = t.data as unknown;
    const data = ArrayBuffer.isView(d) && !(d instanceof DataView) ? (d as unknown as { slice(): unknown }).slice() : Array.isArray(d) ? [...(d as unknown[])] : d;
    return { ...t, shape: [...t.shape], data } as Tensor;
  });
}

/**
 * One model's shadow run: which requests get mirrored (a share, drawn per request) and how many
 * mirrors may run at once. It never touches the answer path; the service fires the mirror after
 * the active version has answered.
 */
export class ShadowRun {
  readonly stats: ShadowAccumulator;
  readonly share: number;
  readonly #maxInFlight: number;
  readonly #random: () => number;
  #inFlight = 0;
  #stopped = false;

  constructor(candidate: string, opts: ShadowOptions, random: () => number = Math.random) {
    if (!(opts.share > 0 && opts.share <= 1)) throw new RangeError(`shadow share must be in (0, 1], got ${opts.share}`);
    this.stats = new ShadowAccumulator(candidate);
    this.share = opts.share;
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
    this.#random = random;
  }

  get candidate(): string {
    return this.stats.candidate;
  }

  /** Whether this request is mirrored: drawn by share, then refused (counted as dropped) when the mirrors are all busy. */
  take(): boolean {
    if (this.#stopped) return false;
    if (this.share < 1 && this.#random() >= this.share) return false;
    if (this.#inFlight >= this.#maxInFlight) {
      this.stats.drop();
      return false;
    }
    this.#inFlight++;
    return true;
  }

  /** A mirror taken with take() finished (or failed). */
  release(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  stop(): void {
    this.#stopped = true;
  }
}
