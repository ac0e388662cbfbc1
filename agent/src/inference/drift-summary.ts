import { DRIFT_BINS, DRIFT_MAX_CLASSES, DRIFT_SUMMARY_EVENT, type DriftSummary, type DriftSummaryData } from '@flotilla/protocol';
import type { TimerHandle, Timers } from '../runtime/timers.ts';
import type { Tensor } from './types.ts';

/**
 * Drift monitoring on the device (docs/inference.md "Drift"): fixed-size summaries of what each
 * model version sees and answers, published per window as `drift.summary` events. The server
 * compares them with the reference the version was registered with.
 */

/** Input elements read per request at most; larger inputs are read with a stride. */
export const MAX_INPUT_ELEMENTS = 4096;

/** Bin of `v` among DRIFT_BINS equal bins over [lo, hi]; values outside go to the end bins. */
function binOf(v: number, lo: number, hi: number): number {
  const i = Math.floor(((v - lo) / (hi - lo)) * DRIFT_BINS);
  return i < 0 ? 0 : i >= DRIFT_BINS ? DRIFT_BINS - 1 : i;
}

function numericData(t: Tensor): ArrayLike<number> | undefined {
  if (t.datatype === 'BYTES') return undefined;
  const d = t.data as ArrayLike<number | bigint | boolean>;
  if (d.length === 0) return undefined;
  const first = d[0];
  if (typeof first === 'number') return d as ArrayLike<number>;
  // bigint and bool tensors are rare as model inputs and outputs: a converted copy is fine.
  return Array.from(d as ArrayLike<unknown>, Number);
}

/** Top-1 index and probability of one output row; rows that are not probabilities get a softmax. */
function topOne(row: ArrayLike<number>, start: number, width: number): { index: number; p: number } {
  let best = 0;
  let max = -Infinity;
  let sum = 0;
  let probabilities = true;
  for (let j = 0; j < width; j++) {
    const v = row[start + j] as number;
    if (v > max) {
      max = v;
      best = j;
    }
    if (!(v >= 0 && v <= 1)) probabilities = false;
    sum += v;
  }
  if (probabilities && Math.abs(sum - 1) < 0.01) return { index: best, p: max };
  // Logits: softmax probability of the top class = 1 / Σ exp(v - max).
  let z = 0;
  for (let j = 0; j < width; j++) z += Math.exp((row[start + j] as number) - max);
  return { index: best, p: z > 0 && Number.isFinite(z) ? 1 / z : 0 };
}

/** Counts and moments for one model version; O(1) memory, O(input size) per request. */
export class DriftAccumulator {
  readonly lo: number;
  readonly hi: number;
  rows = 0;
  #elements = 0;
  #sum = 0;
  #sumSq = 0;
  readonly #inputHist = new Array<number>(DRIFT_BINS).fill(0);
  readonly #confidence = new Array<number>(DRIFT_BINS).fill(0);
  #classes: number[] = [];

  constructor(range: readonly [number, number] = [0, 1]) {
    if (!(range[1] > range[0])) throw new RangeError(`drift input range must have lo < hi, got [${range[0]}, ${range[1]}]`);
    this.lo = range[0];
    this.hi = range[1];
  }

  /** Adds the numeric input tensors' values (strided down to MAX_INPUT_ELEMENTS per call). */
  addInputs(inputs: readonly Tensor[]): void {
    let total = 0;
    for (const t of inputs) total += t.datatype === 'BYTES' ? 0 : t.data.length;
    const stride = Math.max(1, Math.ceil(total / MAX_INPUT_ELEMENTS));
    for (const t of inputs) {
      const data = numericData(t);
      if (!data) continue;
      for (let i = 0; i < data.length; i += stride) {
        const v = data[i] as number;
        if (!Number.isFinite(v)) continue;
        this.#elements++;
        this.#sum += v;
        this.#sumSq += v * v;
        (this.#inputHist[binOf(v, this.lo, this.hi)] as number)++;
      }
    }
  }

  /**
   * Adds the rows of the first output whose last dimension holds two or more classes: top-1
   * confidence and predicted class per row. Outputs of another shape only count rows.
   */
  addOutputs(outputs: readonly Tensor[]): void {
    const scores = outputs.find((t) => t.datatype !== 'BYTES' && t.datatype !== 'BOOL' && t.shape.length > 0 && (t.shape[t.shape.length - 1] as number) >= 2);
    if (!scores) {
      this.rows++;
      return;
    }
    const width = scores.shape[scores.shape.length - 1] as number;
    const data = numericData(scores);
    if (!data) return;
    const rows = Math.floor(data.length / width);
    for (let r = 0; r < rows; r++) {
      const { index, p } = topOne(data, r * width, width);
      (this.#confidence[binOf(p, 0, 1)] as number)++;
      const c = Math.min(index, DRIFT_MAX_CLASSES - 1);
      while (this.#classes.length <= c) this.#classes.push(0);
      (this.#classes[c] as number)++;
      this.rows++;
    }
  }

  /** Adds another accumulator's input statistics (same range) to this one's. */
  mergeInputs(other: DriftAccumulator): void {
    this.#elements += other.#elements;
    this.#sum += other.#sum;
    this.#sumSq += other.#sumSq;
    for (let i = 0; i < DRIFT_BINS; i++) (this.#inputHist[i] as number) += other.#inputHist[i] as number;
  }

  summary(): DriftSummary {
    const n = this.#elements;
    const mean = n > 0 ? this.#sum / n : 0;
    const variance = n > 0 ? Math.max(0, this.#sumSq / n - mean * mean) : 0;
    return {
      rows: this.rows,
      input: { lo: this.lo, hi: this.hi, elements: n, mean, std: Math.sqrt(variance), hist: [...this.#inputHist] },
      confidence: [...this.#confidence],
      classes: [...this.#classes],
    };
  }

  reset(): void {
    this.rows = 0;
    this.#elements = 0;
    this.#sum = 0;
    this.#sumSq = 0;
    this.#inputHist.fill(0);
    this.#confidence.fill(0);
    this.#classes = [];
  }
}

/** Sees every successful request's inputs (before they may be moved to a worker) and outputs. */
export interface InferenceObserver {
  /** Called before the inputs go to the backend; the returned function gets the outputs on success. */
  observe(model: string, version: string, inputs: readonly Tensor[]): ((outputs: readonly Tensor[]) => void) | undefined;
}

export interface DriftRecorderOptions {
  /** Window length; a window is published only when it holds rows (default 60 s). */
  intervalMs?: number;
  /** Range of the input histogram (default [0, 1], normalized inputs). */
  inputRange?: readonly [number, number];
  /** Summarize 1 request in `sampleEvery` (default 1: all). */
  sampleEvery?: number;
  timers: Timers;
  /** Where windows go: the agent's outbox in production. Errors are the publisher's to log. */
  publish(kind: typeof DRIFT_SUMMARY_EVENT, data: DriftSummaryData): void;
}

interface Window {
  model: string;
  version: string;
  start: number;
  acc: DriftAccumulator;
}

/**
 * Per model version, one accumulator for the current window. Windows are reset after publishing,
 * so each summary covers only its own interval and the server decides how many to pool.
 */
export class DriftRecorder implements InferenceObserver {
  readonly #opts: DriftRecorderOptions;
  readonly #windows = new Map<string, Window>();
  readonly #intervalMs: number;
  readonly #sampleEvery: number;
  #seen = 0;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(opts: DriftRecorderOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? 60_000;
    this.#sampleEvery = Math.max(1, Math.floor(opts.sampleEvery ?? 1));
  }

  observe(model: string, version: string, inputs: readonly Tensor[]): ((outputs: readonly Tensor[]) => void) | undefined {
    if (this.#closed || this.#seen++ % this.#sampleEvery !== 0) return undefined;
    // Inputs go into a scratch accumulator first: a request that fails leaves no trace.
    const scratch = new DriftAccumulator(this.#opts.inputRange);
    scratch.addInputs(inputs);
    return (outputs) => {
      if (this.#closed) return;
      const w = this.#window(model, version);
      w.acc.addOutputs(outputs);
      w.acc.mergeInputs(scratch);
    };
  }

  /** Starts the window timer. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule();
  }

  /** Publishes every window that holds rows and starts new ones. */
  flush(): void {
    const end = this.#opts.timers.now();
    for (const [key, w] of this.#windows) {
      if (w.acc.rows === 0) continue;
      const data: DriftSummaryData = { model: w.model, version: w.version, windowStart: w.start, windowEnd: Math.max(end, w.start), summary: w.acc.summary() };
      this.#windows.delete(key);
      this.#opts.publish(DRIFT_SUMMARY_EVENT, data);
    }
  }

  /** Stops the timer; the open windows are published first. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#timer) this.#opts.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#opts.timers.setTimeout(() => {
      this.flush();
      if (!this.#closed) this.#schedule();
    }, this.#intervalMs);
    this.#timer.unref?.();
  }

  #window(model: string, version: string): Window {
    const key = `${model}\u0000${version}`;
    let w = this.#windows.get(key);
    if (!w) {
      w = { model, version, start: this.#opts.timers.now(), acc: new DriftAccumulator(this.#opts.inputRange) };
      this.#windows.set(key, w);
    }
    return w;
  }
}
