import { concatRows, rowsOf, sliceRows, type Tensor } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import type { BatchingConfig } from '../config/schema.ts';
import type { PoolTimers, TimerHandle } from '../runtime/timers.ts';

/** Runs one (possibly batched) set of inputs on a free instance. Inputs are already validated. */
export type BatchRunner = (inputs: readonly Tensor[], outputs: readonly string[] | undefined) => Promise<Tensor[]>;

export interface BatcherEvents {
  /** A session run starts with this many rows from this many requests. */
  onBatch?(rows: number, requests: number): void;
  /** A request leaves the queue for a run, after waiting this long (ms). */
  onDequeue?(waitedMs: number): void;
}

export interface SubmitOptions {
  /** Output names to compute; absent computes all. Requests only share a run when these match. */
  outputs?: readonly string[];
  /** Longest the request may wait in the queue before it is dropped with FLT_POOL_QUEUE_TIMEOUT. */
  timeoutMs: number;
  /** Aborting removes a request that is still queued (a client that hung up). */
  signal?: AbortSignal;
}

interface Queued {
  inputs: readonly Tensor[];
  outputs: readonly string[] | undefined;
  /** Requests share a run only with the same key: input names, inner dimensions, outputs. */
  key: string;
  rows: number;
  enqueuedAt: number;
  deadline: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve(outputs: Tensor[]): void;
  reject(err: unknown): void;
}

function keyOf(inputs: readonly Tensor[], outputs: readonly string[] | undefined): string {
  let key = outputs ? outputs.join(',') : '*';
  for (const t of inputs) key += `|${t.name}:${t.shape.slice(1).join('x')}`;
  return key;
}

/**
 * One model version's queue, with Triton's dynamic batching rules: while an instance is free, the
 * requests at the head of the queue that can share a run (same key, rows summing to at most
 * maxBatchSize) go out together as soon as they fill maxBatchSize or a preferred batch size, or
 * once the oldest has waited maxQueueDelayUs; while every instance is busy the queue simply grows,
 * so batches grow with load. The stacked outputs are cut back into each request's rows.
 *
 * With dynamicBatching off, every request runs alone, `instances` at a time.
 */
export class DynamicBatcher {
  private readonly run: BatchRunner;
  private readonly policy: Readonly<BatchingConfig>;
  private readonly timers: PoolTimers;
  private readonly events: BatcherEvents;
  private readonly delayMs: number;
  private readonly largestPreferred: number;
  private readonly queue: Queued[] = [];
  private running = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private draining = false;
  private closed = false;
  private idle: Array<() => void> = [];

  constructor(run: BatchRunner, policy: Readonly<BatchingConfig>, opts: { timers: PoolTimers; events?: BatcherEvents }) {
    this.run = run;
    this.policy = policy;
    this.timers = opts.timers;
    this.events = opts.events ?? {};
    this.delayMs = policy.maxQueueDelayUs / 1000;
    this.largestPreferred = policy.preferredBatchSizes.at(-1) ?? 0;
  }

  /** Requests waiting for a run: the figure the pool scales on. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** Session runs in progress. */
  get runningBatches(): number {
    return this.running;
  }

  /**
   * Queues a request and resolves with its outputs. Refuses at once with FLT_POOL_QUEUE_FULL when
   * maxQueueSize requests are already waiting, and with FLT_INFER_UNAVAILABLE once closed.
   */
  submit(inputs: readonly Tensor[], opts: SubmitOptions): Promise<Tensor[]> {
    if (this.closed || this.draining) return Promise.reject(new FlotillaError('FLT_INFER_UNAVAILABLE', 'the model version is unloading'));
    if (this.queue.length >= this.policy.maxQueueSize) {
      return Promise.reject(
        new FlotillaError('FLT_POOL_QUEUE_FULL', `the queue already holds ${this.policy.maxQueueSize} requests`, { maxQueueSize: this.policy.maxQueueSize }),
      );
    }
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    const now = this.timers.now();
    return new Promise<Tensor[]>((resolve, reject) => {
      const item: Queued = {
        inputs,
        outputs: opts.outputs,
        key: keyOf(inputs, opts.outputs),
        rows: rowsOf(inputs[0] as Tensor),
        enqueuedAt: now,
        deadline: now + opts.timeoutMs,
        signal: opts.signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      if (opts.signal) {
        const signal = opts.signal;
        item.onAbort = () => this.cancel(item, signal.reason);
        signal.addEventListener('abort', item.onAbort, { once: true });
      }
      this.queue.push(item);
      this.pump();
    });
  }

  /** Sends everything queued without waiting for company, then resolves once no run is left. New requests are refused. */
  drain(): Promise<void> {
    this.draining = true;
    this.pump();
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Drains, then refuses everything. Safe to call twice. */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
  }

  private cancel(item: Queued, reason: unknown): void {
    const at = this.queue.indexOf(item);
    if (at < 0) return; // already running: its answer is simply not read
    this.queue.splice(at, 1);
    item.reject(reason);
    this.pump();
  }

  /** Starts every run that may start now, then arms one timer for the next moment something changes. */
  private pump(): void {
    const now = this.timers.now();
    this.expire(now);
    while (this.running < this.policy.instances && this.queue.length > 0) {
      const take = this.form(now);
      if (take === 0) break;
      this.start(this.queue.splice(0, take), now);
    }
    this.arm(now);
    if (this.queue.length === 0 && this.running === 0 && this.idle.length > 0) {
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
    }
  }

  /** Drops queued requests past their deadline; they never reach an instance. */
  private expire(now: number): void {
    let kept = 0;
    for (const item of this.queue) {
      if (item.deadline <= now) {
        this.detach(item);
        item.reject(new FlotillaError('FLT_POOL_QUEUE_TIMEOUT', `waited ${Math.round(now - item.enqueuedAt)} ms in the queue`));
      } else {
        this.queue[kept++] = item;
      }
    }
    this.queue.length = kept;
  }

  /** How many requests from the head go out now (0: wait for company). */
  private form(now: number): number {
    const head = this.queue[0] as Queued;
    if (!this.policy.dynamicBatching) return 1;
    const max = this.policy.maxBatchSize;
    const preferred = this.policy.preferredBatchSizes;
    let rows = 0;
    let count = 0;
    let preferredCount = 0;
    let blocked = false;
    for (const item of this.queue) {
      // FIFO: the batch stops at the first request that cannot join it.
      if (item.key !== head.key || rows + item.rows > max) {
        blocked = true;
        break;
      }
      rows += item.rows;
      count++;
      if (preferred.includes(rows)) preferredCount = count;
    }
    if (blocked || rows >= max || this.draining) return count;
    // A preferred size that cannot grow into a larger preferred one goes now.
    if (preferredCount > 0 && (preferredCount === count || rows >= this.largestPreferred)) return preferredCount;
    if (now - head.enqueuedAt >= this.delayMs) return count;
    return 0;
  }

  private arm(now: number): void {
    let at = Number.POSITIVE_INFINITY;
    if (this.queue.length > 0) {
      for (const item of this.queue) if (item.deadline < at) at = item.deadline;
      if (this.running < this.policy.instances) at = Math.min(at, (this.queue[0] as Queued).enqueuedAt + this.delayMs);
    }
    if (at === this.timerAt) return;
    if (this.timer) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, Math.max(0, at - now));
    // An idle queue timer must not keep a process alive on its own.
    this.timer.unref?.();
  }

  private detach(item: Queued): void {
    if (item.onAbort) item.signal?.removeEventListener('abort', item.onAbort);
  }

  private start(items: Queued[], now: number): void {
    this.running++;
    let rows = 0;
    for (const item of items) {
      this.detach(item);
      rows += item.rows;
      this.events.onDequeue?.(now - item.enqueuedAt);
    }
    this.events.onBatch?.(rows, items.length);
    const first = items[0] as Queued;
    let run: Promise<Tensor[]>;
    try {
      const inputs = items.length === 1 ? first.inputs : first.inputs.map((_, i) => concatRows(items.map((w) => w.inputs[i] as Tensor)));
      run = this.run(inputs, first.outputs);
    } catch (err) {
      run = Promise.reject(err);
    }
    run
      .then((outputs) => {
        if (items.length === 1) return first.resolve(outputs);
        for (const t of outputs) {
          if (rowsOf(t) !== rows) throw new FlotillaError('FLT_INFER_RUN_FAILED', `output ${t.name} has ${rowsOf(t)} rows for a batch of ${rows}; cannot split it back`);
        }
        let start = 0;
        for (const item of items) {
          item.resolve(outputs.map((t) => sliceRows(t, start, item.rows)));
          start += item.rows;
        }
      })
      .catch((err: unknown) => {
        for (const item of items) item.reject(err);
      })
      .finally(() => {
        this.running--;
        this.pump();
      });
  }
}
