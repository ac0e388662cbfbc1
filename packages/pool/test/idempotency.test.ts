import { describe, expect, it } from 'vitest';
import { IdempotencyCache } from '../src/index.ts';
import { digits, FakeTimers, makeRepository, metricValue, MODEL, startWorker } from './helpers.ts';

const path = `/v2/models/${MODEL}/infer`;

describe('idempotent retries', () => {
  it('replays the first answer for a repeated Idempotency-Key without another session run', async () => {
    const worker = await startWorker(await makeRepository());
    const [digit] = await digits(1);
    const payload = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array.from(digit as Float32Array) }] });
    const headers = { 'idempotency-key': 'escalation-42' };
    const first = await worker.app.inject({ method: 'POST', url: path, payload, headers });
    const runs = await metricValue(worker, 'flotilla_pool_session_runs_total', { model: MODEL });
    const retry = await worker.app.inject({ method: 'POST', url: path, payload, headers });
    expect(retry.statusCode).toBe(200);
    expect(retry.body).toBe(first.body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await metricValue(worker, 'flotilla_pool_session_runs_total', { model: MODEL })).toBe(runs);
    expect(await metricValue(worker, 'flotilla_pool_idempotent_replays_total', { model: MODEL })).toBe(1);

    const other = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0) }] });
    const mismatch = await worker.app.inject({ method: 'POST', url: path, payload: other, headers });
    expect(mismatch.statusCode).toBe(422);
    expect(mismatch.json()).toMatchObject({ code: 'FLT_POOL_IDEMPOTENCY_MISMATCH' });
  });

  it('treats a repeated body id as a retry, and runs concurrent duplicates once', async () => {
    const worker = await startWorker(await makeRepository(), { batching: { maxQueueDelayUs: 20_000 } });
    const [digit] = await digits(1);
    const payload = JSON.stringify({ id: 'req-7', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array.from(digit as Float32Array) }] });
    const answers = await Promise.all([1, 2, 3].map(() => worker.app.inject({ method: 'POST', url: path, payload })));
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers.every((a) => a.statusCode === 200)).toBe(true);
    expect(await metricValue(worker, 'flotilla_pool_session_runs_total', { model: MODEL })).toBe(1);
    expect(await metricValue(worker, 'flotilla_pool_batch_size_sum', { model: MODEL })).toBe(1);
  });

  it('forgets answers after their TTL, and failures at once', async () => {
    const timers = new FakeTimers();
    const cache = new IdempotencyCache<string>({ ttlMs: 1000, maxEntries: 10, timers });
    let runs = 0;
    const work = () => Promise.resolve(`answer ${++runs}`);
    expect(await (cache.run('k', 'f', work) as { value: Promise<string> }).value).toBe('answer 1');
    expect(cache.run('k', 'f', work)).toMatchObject({ kind: 'replay' });
    timers.advance(1000);
    expect(cache.run('k', 'f', work).kind).toBe('first');

    const failing = cache.run('bad', 'f', () => Promise.reject(new Error('no')));
    await expect((failing as { value: Promise<string> }).value).rejects.toThrow('no');
    expect(cache.run('bad', 'f', work).kind).toBe('first');
  });

  it('keeps at most maxEntries answers, dropping the oldest', async () => {
    const cache = new IdempotencyCache<number>({ ttlMs: 60_000, maxEntries: 2, timers: new FakeTimers() });
    for (const k of ['a', 'b', 'c']) cache.run(k, 'f', () => Promise.resolve(1));
    expect(cache.size).toBe(2);
    expect(cache.run('a', 'f', () => Promise.resolve(2)).kind).toBe('first');
  });
});
