import { afterEach, describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import { decodeMessage, HardExampleData } from '@flotilla/protocol';
import type { OutboxEntry } from '../../src/outbox/outbox.ts';
import { eventually } from '../helpers/eventually.ts';
import { input, makeEscalator, openTestOutbox, settle } from './fixtures.ts';
import { startTestPool, type TestPool } from './kserve-test-pool.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

const checkExample = Compile(HardExampleData);

/** A pool whose answers wait until the test releases them. */
async function slowPool(): Promise<TestPool & { release(): void }> {
  const p = await startTestPool(() => [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: Float32Array.from([0, 1, 0]) }]);
  let release!: () => void;
  p.hold = new Promise<void>((r) => (release = r));
  cleanups.push(async () => {
    release();
    await p.close();
  });
  return Object.assign(p, { release: () => release() });
}

const dataOf = (e: OutboxEntry | undefined) => e?.data as HardExampleData | undefined;

describe('late cloud answers', () => {
  it('answers edge-fallback within the budget, then sends the late cloud answer up with the same hard example, once', async () => {
    const slow = await slowPool();
    const outbox = openTestOutbox();
    const { escalator, cloud } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 50 }, [{ pool: 'slow', endpoints: [slow.url] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o) },
    });
    const r = await escalator.infer('digits', input(0.5));
    expect(r.answeredBy).toBe('edge-fallback');
    expect(r.error).toBe('FLT_ESCALATION_BUDGET_EXCEEDED');
    await settle();
    expect(outbox.all()).toHaveLength(1);
    const first = dataOf(outbox.all()[0]);
    expect(first).toMatchObject({ answeredBy: 'edge-fallback', requestId: r.requestId });
    expect(first?.cloudOutput).toBeUndefined();
    expect(escalator.stats()).toMatchObject({ latePending: 1, lateAnswers: 0 });
    // The endpoint is judged at the budget, as without late answers (its timer and the answer's are
    // due at the same instant, in either order).
    await eventually(() => cloud.endpoints()[0]?.failures === 1);
    expect(cloud.endpoints()[0]).toMatchObject({ failures: 1, successes: 0, inflight: 1 });

    slow.release();
    const entries = await eventually(() => (outbox.all().length === 2 ? outbox.all() : undefined));
    const lateOne = entries[1]!;
    expect(checkExample.Check(lateOne.data)).toBe(true);
    expect(decodeMessage('events', outbox.encode(lateOne)).ok).toBe(true);
    expect(lateOne.priority).toBe('low');
    expect(dataOf(lateOne)).toMatchObject({
      late: true,
      requestId: r.requestId,
      at: first!.at,
      answeredBy: 'edge-fallback',
      cloudVersion: '9.0.0',
      input: first!.input,
      edgeOutput: first!.edgeOutput,
      cloudOutput: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], b64: Buffer.from(Float32Array.from([0, 1, 0]).buffer).toString('base64') }],
    });
    expect(dataOf(lateOne)?.cloudAnsweredAt).toBeGreaterThanOrEqual(first!.at);
    await settle();
    expect(outbox.all()).toHaveLength(2);
    expect(escalator.stats()).toMatchObject({ latePending: 0, lateAnswers: 1, lateMissed: 0 });
    // One request reached the pool: the late answer is that request's, not a retry.
    expect(slow.requests).toHaveLength(1);
    // A late answer moves the latency figures but does not close a circuit it failed at the budget.
    expect(cloud.endpoints()[0]).toMatchObject({ failures: 1, successes: 1 });
  });

  it('cuts requests at their budget beyond the bound on pending late answers', async () => {
    const slow = await slowPool();
    const outbox = openTestOutbox();
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 50 }, [{ pool: 'slow', endpoints: [slow.url] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o), lateAnswers: { maxPending: 1 } },
      client: { breaker: { failureThreshold: 10 } },
    });
    const answers = await Promise.all([escalator.infer('digits', input(0.5)), escalator.infer('digits', input(0.4))]);
    expect(answers.map((a) => a.answeredBy)).toEqual(['edge-fallback', 'edge-fallback']);
    expect(escalator.stats()).toMatchObject({ latePending: 1, lateMissed: 1 });
    slow.release();
    await eventually(() => escalator.stats().latePending === 0);
    await settle();
    const late = outbox.all().filter((e) => dataOf(e)?.late);
    expect(late).toHaveLength(1);
    expect(escalator.stats()).toMatchObject({ lateAnswers: 1, lateMissed: 1 });
  });

  it('lets nothing run late when late answers are off or the policy keeps no examples', async () => {
    for (const setup of [
      { policy: { maxProbBelow: 0.8, budgetMs: 50 }, late: { windowMs: 0 } },
      { policy: { maxProbBelow: 0.8, budgetMs: 50, keepExamples: 'none' as const }, late: {} },
    ]) {
      const slow = await slowPool();
      const outbox = openTestOutbox();
      const { escalator, cloud } = makeEscalator(setup.policy, [{ pool: 'slow', endpoints: [slow.url] }], {
        escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o), lateAnswers: setup.late },
      });
      expect((await escalator.infer('digits', input(0.5))).answeredBy).toBe('edge-fallback');
      expect(escalator.stats().latePending).toBe(0);
      // The request ends at its budget while the pool still holds its answer.
      await eventually(() => cloud.endpoints()[0]?.inflight === 0);
      slow.release();
      await settle();
      expect(outbox.all().filter((e) => dataOf(e)?.late)).toHaveLength(0);
    }
  });
});
