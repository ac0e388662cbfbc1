import { afterEach, describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import { decodeMessage, HardExampleData } from '@flotilla/protocol';
import { HARD_EXAMPLE_EVENT } from '../../src/escalation/hard-example.ts';
import { CLOUD_ANSWER, input, makeEscalator, openTestOutbox, settle } from './fixtures.ts';
import { refusedUrl, startBlackhole, startTestPool, type TestPool } from './kserve-test-pool.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

async function pool(): Promise<TestPool> {
  const p = await startTestPool(() => CLOUD_ANSWER());
  cleanups.push(() => p.close());
  return p;
}

const checkExample = Compile(HardExampleData);

describe('escalator', () => {
  it('answers on the edge when the local result is confident, and says why', async () => {
    const live = await pool();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'p', endpoints: [live.url] }]);
    const r = await escalator.infer('digits', input(0.95));
    expect(r.answeredBy).toBe('edge');
    expect(r.reason.policy).toBe('confident');
    expect(r.parameters).toMatchObject({ flotilla_answered_by: 'edge', flotilla_policy: 'confident' });
    expect(live.requests).toHaveLength(0);
  });

  it('sends a low-confidence request to the cloud and answers with the cloud result', async () => {
    const live = await pool();
    const outbox = openTestOutbox();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'p', endpoints: [live.url] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o) },
    });
    const r = await escalator.infer('digits', input(0.5));
    expect(r.answeredBy).toBe('cloud');
    expect(Array.from(r.outputs[0]!.data as Float32Array)).toEqual([0, 1, 0]);
    expect(r.parameters).toMatchObject({ flotilla_answered_by: 'cloud', flotilla_policy: 'max-prob', flotilla_value: 0.5, flotilla_threshold: 0.8, flotilla_pool: 'p' });
    await settle();
    const [entry] = outbox.all();
    expect(entry?.kind).toBe(HARD_EXAMPLE_EVENT);
    expect(entry?.priority).toBe('low');
    expect(checkExample.Check(entry!.data)).toBe(true);
    expect(entry!.data).toMatchObject({ model: 'digits', version: '1.0.0', answeredBy: 'cloud', cloudVersion: '9.0.0', reason: { policy: 'max-prob' } });
    // The outbox's own envelope is what the server validates.
    expect(decodeMessage('events', outbox.encode(entry!)).ok).toBe(true);
  });

  it('answers edge-fallback with the local result when the cloud endpoint accepts and never answers', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const outbox = openTestOutbox();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 100 }, [{ pool: 'silent', endpoints: [hole.url] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o) },
    });
    const r = await escalator.infer('digits', input(0.5));
    expect(r.answeredBy).toBe('edge-fallback');
    expect(r.error).toBe('FLT_ESCALATION_BUDGET_EXCEEDED');
    expect((r.outputs[0]!.data as Float32Array)[0]).toBeCloseTo(0.5, 6);
    expect(hole.connections()).toBeGreaterThan(0);
    await settle();
    const [entry] = outbox.all();
    expect(entry!.data).toMatchObject({ answeredBy: 'edge-fallback', error: 'FLT_ESCALATION_BUDGET_EXCEEDED', requestId: r.requestId });
    expect((entry!.data as { cloudOutput?: unknown }).cloudOutput).toBeUndefined();
  });

  it('answers edge-fallback when every endpoint refuses the connection', async () => {
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'gone', endpoints: [await refusedUrl(), await refusedUrl()] }]);
    const r = await escalator.infer('digits', input(0.5));
    expect(r).toMatchObject({ answeredBy: 'edge-fallback', error: 'FLT_ESCALATION_CLOUD_UNAVAILABLE' });
  });

  it('answers edge-fallback with FLT_ESCALATION_NO_ROUTE when no pool serves the model', async () => {
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, []);
    expect(await escalator.infer('digits', input(0.5))).toMatchObject({ answeredBy: 'edge-fallback', error: 'FLT_ESCALATION_NO_ROUTE' });
  });

  it('fails over from a dead pool to a live one', async () => {
    const live = await pool();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [
      { pool: 'dead', endpoints: [await refusedUrl()] },
      { pool: 'live', endpoints: [live.url] },
    ]);
    const r = await escalator.infer('digits', input(0.5));
    expect(r).toMatchObject({ answeredBy: 'cloud', parameters: { flotilla_pool: 'live' } });
    expect(live.requests).toHaveLength(1);
  });

  it('fails over from a silent endpoint to a live one inside the same budget', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const live = await pool();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 400 }, [
      { pool: 'silent', endpoints: [hole.url] },
      { pool: 'live', endpoints: [live.url] },
    ]);
    const r = await escalator.infer('digits', input(0.5));
    expect(r.answeredBy).toBe('cloud');
    expect(r.parameters.flotilla_pool).toBe('live');
    expect(hole.connections()).toBeGreaterThan(0);
    expect(live.requests).toHaveLength(1);
  });

  it('keeps one idempotency id, as KServe id and Idempotency-Key, across retries', async () => {
    const flaky = await pool();
    flaky.script.push(503);
    const live = await pool();
    const ids = ['req-0001'];
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'a', endpoints: [flaky.url] }, { pool: 'b', endpoints: [live.url] }], {
      escalator: { newRequestId: () => ids.shift()! },
    });
    const r = await escalator.infer('digits', input(0.5));
    expect(r.answeredBy).toBe('cloud');
    expect(r.requestId).toBe('req-0001');
    const sent = [...flaky.requests, ...live.requests];
    expect(sent).toHaveLength(2);
    for (const s of sent) expect(s).toMatchObject({ id: 'req-0001', idempotencyKey: 'req-0001' });
  });

  it('does not retry a request the cloud refused as invalid', async () => {
    const strict = await pool();
    strict.script.push(400);
    const other = await pool();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'a', endpoints: [strict.url] }, { pool: 'b', endpoints: [other.url] }]);
    expect(await escalator.infer('digits', input(0.5))).toMatchObject({ answeredBy: 'edge-fallback', error: 'FLT_ESCALATION_CLOUD_REFUSED' });
    expect(other.requests).toHaveLength(0);
  });

  it('always-cloud skips the local run; when the cloud fails the local model answers as fallback', async () => {
    const live = await pool();
    const { escalator, local } = makeEscalator({ mode: 'always-cloud' }, [{ pool: 'p', endpoints: [live.url] }]);
    expect((await escalator.infer('digits', input(0.99))).answeredBy).toBe('cloud');
    expect(local.calls).toBe(0);
    live.script.push(500);
    const r = await escalator.infer('digits', input(0.99));
    expect(r.answeredBy).toBe('edge-fallback');
    expect(local.calls).toBe(1);
  });

  it('serves models without a policy from the edge untouched', async () => {
    const { escalator } = makeEscalator({ maxProbBelow: 1 }, []);
    const r = await escalator.infer('other-model', input(0.1));
    expect(r).toMatchObject({ answeredBy: 'edge', reason: { policy: 'no-policy' } });
  });
});
