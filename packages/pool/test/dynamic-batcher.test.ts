import type { Tensor } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { DynamicBatcher, type BatchingConfig } from '../src/index.ts';
import { FakeTimers } from './helpers.ts';

const policy = (over: Partial<BatchingConfig> = {}): BatchingConfig => ({
  dynamicBatching: true,
  maxBatchSize: 8,
  maxQueueDelayUs: 1000,
  preferredBatchSizes: [],
  maxQueueSize: 100,
  instances: 1,
  ...over,
});

/** A request of `rows` rows whose values are `value`, two columns wide. */
const req = (value: number, rows = 1): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [rows, 2], data: new Float32Array(rows * 2).fill(value) }];

/** A runner that records each batch and answers when told, doubling every value. */
function controlledRunner() {
  const runs: Array<{ rows: number; values: number[]; finish(): void; fail(err: Error): void }> = [];
  const run = (inputs: readonly Tensor[]) =>
    new Promise<Tensor[]>((resolve, reject) => {
      const x = inputs[0] as Tensor;
      const data = x.data as Float32Array;
      runs.push({
        rows: x.shape[0] as number,
        values: Array.from(data.filter((_, i) => i % 2 === 0)),
        finish: () => resolve([{ name: 'y', datatype: 'FP32', shape: [...x.shape], data: data.map((v) => v * 2) }]),
        fail: reject,
      });
    });
  return { runs, run };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('dynamic batcher', () => {
  it('waits up to maxQueueDelayUs for company, then sends the queued requests as one run and splits the answers', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy(), { timers });
    const answers = [1, 2, 3].map((v) => b.submit(req(v), { timeoutMs: 10_000 }));
    expect(runs).toHaveLength(0);
    timers.advance(0.999);
    expect(runs).toHaveLength(0);
    timers.advance(0.001);
    expect(runs.map((r) => r.values)).toEqual([[1, 2, 3]]);
    runs[0]?.finish();
    const outs = await Promise.all(answers);
    expect(outs.map((o) => Array.from(o[0]?.data as Float32Array))).toEqual([[2, 2], [4, 4], [6, 6]]);
    expect(outs.every((o) => o[0]?.shape[0] === 1)).toBe(true);
  });

  it('sends at once when the queue fills maxBatchSize rows', () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxBatchSize: 4 }), { timers });
    void b.submit(req(1, 3), { timeoutMs: 10_000 });
    void b.submit(req(2, 1), { timeoutMs: 10_000 });
    expect(runs.map((r) => r.rows)).toEqual([4]);
  });

  it('never puts more than maxBatchSize rows in a run: a request that does not fit waits for the next', () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxBatchSize: 4, instances: 2 }), { timers });
    void b.submit(req(1, 3), { timeoutMs: 10_000 });
    void b.submit(req(2, 2), { timeoutMs: 10_000 });
    expect(runs.map((r) => r.rows)).toEqual([3]);
    timers.advance(1);
    expect(runs.map((r) => r.rows)).toEqual([3, 2]);
  });

  it('grows batches while every instance is busy, and sends the backlog when one frees up', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxQueueDelayUs: 0 }), { timers });
    void b.submit(req(1), { timeoutMs: 10_000 });
    for (let v = 2; v <= 6; v++) void b.submit(req(v), { timeoutMs: 10_000 });
    expect(runs.map((r) => r.values)).toEqual([[1]]);
    expect(b.queueDepth).toBe(5);
    runs[0]?.finish();
    await settle();
    expect(runs.map((r) => r.values)).toEqual([[1], [2, 3, 4, 5, 6]]);
    expect(b.queueDepth).toBe(0);
  });

  it('sends a preferred batch size as soon as the queue holds one, and the largest it can form from a backlog', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ preferredBatchSizes: [2, 4] }), { timers });
    void b.submit(req(1), { timeoutMs: 10_000 });
    expect(runs).toHaveLength(0);
    void b.submit(req(2), { timeoutMs: 10_000 });
    expect(runs.map((r) => r.values)).toEqual([[1, 2]]);
    for (let v = 3; v <= 7; v++) void b.submit(req(v), { timeoutMs: 10_000 });
    runs[0]?.finish();
    await settle();
    expect(runs.map((r) => r.values)).toEqual([[1, 2], [3, 4, 5, 6]]);
    expect(b.queueDepth).toBe(1);
  });

  it('keeps requests with different inner shapes or outputs in different runs, in arrival order', () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ instances: 3 }), { timers });
    void b.submit(req(1), { timeoutMs: 10_000 });
    void b.submit(req(2), { timeoutMs: 10_000, outputs: ['y'] });
    void b.submit(req(3), { timeoutMs: 10_000 });
    timers.advance(1);
    expect(runs.map((r) => r.values)).toEqual([[1], [2], [3]]);
  });

  it('with dynamic batching off runs every request alone, `instances` at a time', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ dynamicBatching: false, instances: 2 }), { timers });
    for (let v = 1; v <= 4; v++) void b.submit(req(v), { timeoutMs: 10_000 });
    expect(runs.map((r) => r.values)).toEqual([[1], [2]]);
    runs[0]?.finish();
    await settle();
    expect(runs.map((r) => r.values)).toEqual([[1], [2], [3]]);
  });

  it('refuses a request with FLT_POOL_QUEUE_FULL once maxQueueSize requests wait', async () => {
    const timers = new FakeTimers();
    const { run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxQueueSize: 2 }), { timers });
    void b.submit(req(1), { timeoutMs: 10_000 });
    void b.submit(req(2), { timeoutMs: 10_000 });
    await expect(b.submit(req(3), { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'FLT_POOL_QUEUE_FULL', statusCode: 429 });
  });

  it('drops a request that waited past its timeout with FLT_POOL_QUEUE_TIMEOUT, without running it', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxQueueDelayUs: 0 }), { timers });
    void b.submit(req(1), { timeoutMs: 10_000 });
    const late = b.submit(req(2), { timeoutMs: 50 });
    timers.advance(50);
    await expect(late).rejects.toMatchObject({ code: 'FLT_POOL_QUEUE_TIMEOUT' });
    runs[0]?.finish();
    await settle();
    expect(runs.map((r) => r.values)).toEqual([[1]]);
  });

  it('removes a queued request whose caller aborts', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy(), { timers });
    const ac = new AbortController();
    const gone = b.submit(req(1), { timeoutMs: 10_000, signal: ac.signal });
    void b.submit(req(2), { timeoutMs: 10_000 });
    ac.abort(new Error('hung up'));
    await expect(gone).rejects.toThrow('hung up');
    timers.advance(1);
    expect(runs.map((r) => r.values)).toEqual([[2]]);
  });

  it('fails every request of a run that fails, and keeps serving', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy(), { timers });
    const a = b.submit(req(1), { timeoutMs: 10_000 });
    const c = b.submit(req(2), { timeoutMs: 10_000 });
    timers.advance(1);
    runs[0]?.fail(new FlotillaError('FLT_INFER_RUN_FAILED', 'boom'));
    await expect(a).rejects.toMatchObject({ code: 'FLT_INFER_RUN_FAILED' });
    await expect(c).rejects.toMatchObject({ code: 'FLT_INFER_RUN_FAILED' });
    const next = b.submit(req(3), { timeoutMs: 10_000 });
    timers.advance(1);
    runs[1]?.finish();
    expect(Array.from((await next)[0]?.data as Float32Array)).toEqual([6, 6]);
  });

  it('drain sends what is queued without waiting, then refuses new requests', async () => {
    const timers = new FakeTimers();
    const { runs, run } = controlledRunner();
    const b = new DynamicBatcher(run, policy({ maxQueueDelayUs: 1_000_000 }), { timers });
    const a = b.submit(req(1), { timeoutMs: 10_000 });
    const drained = b.drain();
    expect(runs).toHaveLength(1);
    runs[0]?.finish();
    await a;
    await drained;
    await expect(b.submit(req(2), { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'FLT_INFER_UNAVAILABLE' });
    expect(timers.scheduled).toBe(0);
  });
});
