import { FlotillaError } from '@flotilla/protocol';
import { concatRows, rowsOf, sliceRows } from '@flotilla/kserve';
import type { OnnxInferOptions } from '../onnx/onnx-loaded-model.ts';
import type { LoadedModel, Tensor } from '../types.ts';

export interface BatchingConfig {
  /** Most rows (dim 0) in one run. */
  maxBatchSize: number;
  /** Longest a request waits for company, in microseconds (below 1,000: until the event loop's next turn). */
  maxDelayUs: number;
}

interface Waiting {
  inputs: readonly Tensor[];
  rows: number;
  resolve(outputs: Tensor[]): void;
  reject(err: unknown): void;
}

interface Group {
  outputs: readonly string[] | undefined;
  items: Waiting[];
  rows: number;
  timer: { cancel(): void } | undefined;
}

/** True when every input and output has a dynamic first dimension, so requests can be stacked along it. */
export function batchable(loaded: Pick<LoadedModel, 'inputs' | 'outputs'>): boolean {
  return [...loaded.inputs, ...loaded.outputs].every((s) => s.shape.length > 0 && s.shape[0] === -1);
}

function schedule(delayUs: number, fn: () => void): { cancel(): void } {
  if (delayUs < 1000) {
    const h = setImmediate(fn);
    return { cancel: () => clearImmediate(h) };
  }
  const h = setTimeout(fn, Math.ceil(delayUs / 1000));
  return { cancel: () => clearTimeout(h) };
}

/**
 * Stacks concurrent requests for one model version along dim 0 and runs them as one batch, then
 * splits the outputs back by each request's row count. Requests only share a batch when their
 * inner dimensions and requested outputs match. Inputs must already be validated.
 */
export class MicroBatcher {
  private readonly loaded: LoadedModel;
  private readonly config: BatchingConfig;
  private readonly groups = new Map<string, Group>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly onBatch: ((size: number) => void) | undefined;
  private waiting = 0;

  constructor(loaded: LoadedModel, config: BatchingConfig, onBatch?: (rows: number) => void) {
    this.loaded = loaded;
    this.config = config;
    this.onBatch = onBatch;
  }

  /** Requests queued here or running as part of a batch. */
  get pending(): number {
    return this.waiting;
  }

  infer(inputs: readonly Tensor[], outputs?: readonly string[]): Promise<Tensor[]> {
    const rows = rowsOf(inputs[0] as Tensor);
    if (rows >= this.config.maxBatchSize) return this.loaded.infer(inputs, outputs ? { outputs } : undefined);
    const key = `${outputs?.join(',') ?? '*'}|${inputs.map((t) => `${t.name}:${t.shape.slice(1).join('x')}`).join(';')}`;
    let group = this.groups.get(key);
    if (group && group.rows + rows > this.config.maxBatchSize) {
      this.flush(key, group);
      group = undefined;
    }
    if (!group) {
      group = { outputs, items: [], rows: 0, timer: undefined };
      this.groups.set(key, group);
      const g = group;
      group.timer = schedule(this.config.maxDelayUs, () => this.flush(key, g));
    }
    this.waiting++;
    return new Promise<Tensor[]>((resolve, reject) => {
      const g = group as Group;
      g.items.push({ inputs, rows, resolve, reject });
      g.rows += rows;
      if (g.rows >= this.config.maxBatchSize) this.flush(key, g);
    });
  }

  /** Runs whatever is queued now and waits for every batch still running. */
  async drain(): Promise<void> {
    for (const [key, group] of this.groups) this.flush(key, group);
    await Promise.allSettled([...this.inFlight]);
  }

  private flush(key: string, group: Group): void {
    if (this.groups.get(key) !== group) return;
    this.groups.delete(key);
    group.timer?.cancel();
    const run = this.runBatch(group).finally(() => {
      this.waiting -= group.items.length;
      this.inFlight.delete(run);
    });
    this.inFlight.add(run);
  }

  private async runBatch(group: Group): Promise<void> {
    const { items, rows } = group;
    this.onBatch?.(rows);
    const opts = group.outputs ? { outputs: group.outputs } : {};
    if (items.length === 1) {
      const only = items[0] as Waiting;
      await this.loaded.infer(only.inputs, opts).then(only.resolve, only.reject);
      return;
    }
    const batched = (items[0] as Waiting).inputs.map((t, i) => concatRows(items.map((w) => w.inputs[i] as Tensor)));
    let outputs: Tensor[];
    try {
      // The stacked buffers are ours alone: move them to the worker rather than copy.
      // Backends that do not know `transfer` / `validated` ignore them.
      const batchOpts: OnnxInferOptions = { ...opts, transfer: true, validated: true };
      outputs = await this.loaded.infer(batched, batchOpts);
      for (const t of outputs) {
        if (rowsOf(t) !== rows) throw new FlotillaError('FLT_INFER_RUN_FAILED', `output ${t.name} has ${rowsOf(t)} rows for a batch of ${rows}; cannot split it back`);
      }
    } catch (err) {
      for (const w of items) w.reject(err);
      return;
    }
    let start = 0;
    for (const w of items) {
      w.resolve(outputs.map((t) => sliceRows(t, start, w.rows)));
      start += w.rows;
    }
  }
}
