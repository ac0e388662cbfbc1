import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { EscalationPolicy } from '@flotilla/protocol';
import { CloudClient } from '../../src/escalation/cloud-client.ts';
import { Escalator } from '../../src/escalation/escalator.ts';
import { stickyPoint } from '../../src/inference/ab-split.ts';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import { buildFixtures, goldenInput, type BuiltModels } from '../inference/model-fixtures.ts';
import { CLOUD_ANSWER } from './fixtures.ts';
import { startTestPool, type TestPool } from './kserve-test-pool.ts';

const CANDIDATE = '1.1.0';

/**
 * The escalator in front of a real InferenceService (real onnxruntime) that splits `digits`
 * between an int8 control (1.0.0) and an fp32 candidate (1.1.0).
 */
describe('escalation during an A/B split', () => {
  let models: BuiltModels;
  let pool: TestPool;
  beforeAll(async () => {
    models = await buildFixtures(['mnist-edge-int8', 'mnist-edge-fp32']);
  }, 120_000);
  afterAll(() => models?.cleanup());
  afterEach(async () => {
    await pool?.close();
  });

  /** The split draws from `draws` in order (0.5 once they run out); the policy's audit draw is always 0. */
  async function split(policy: EscalationPolicy, ab: { share: number; sticky?: string }, draws: number[] = []): Promise<{ svc: InferenceService; escalator: Escalator }> {
    const svc = new InferenceService({ warmupRuns: 1, random: () => draws.shift() ?? 0.5 });
    onTestFinished(() => svc.close());
    await svc.load(models.spec('mnist-edge-int8', { model: 'digits', version: '1.0.0' }));
    await svc.stage(models.spec('mnist-edge-fp32', { model: 'digits', version: CANDIDATE }));
    svc.startAb('digits', ab);
    pool = await startTestPool(() => CLOUD_ANSWER());
    const cloud = new CloudClient({ probeIntervalMs: 0 });
    onTestFinished(() => cloud.close());
    const escalator = new Escalator({ local: svc, cloud, random: () => 0 });
    onTestFinished(() => escalator.close());
    escalator.configure({ digits: { policy, routes: [{ pool: 'p', endpoints: [pool.url] }] } });
    return { svc, escalator };
  }
  const input = () => goldenInput(models.card('mnist-edge-int8'));

  it('counts an escalation after a local run for the arm whose version answered locally', async () => {
    // auditRate 1 escalates every request once it ran locally; the split draws candidate, then control.
    const { svc, escalator } = await split({ auditRate: 1, budgetMs: 5_000 }, { share: 0.5 }, [0.1, 0.9, 0.9]);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await escalator.infer('digits', input())).answeredBy);
    expect(answers).toEqual(['cloud', 'cloud', 'cloud']);
    const report = svc.abReport('digits')!;
    expect(report.candidate).toMatchObject({ version: CANDIDATE, requests: 1, escalations: 1 });
    expect(report.control).toMatchObject({ version: '1.0.0', requests: 2, escalations: 2 });
  });

  it('counts no escalation for requests the edge kept, nor for cloud-first requests that never ran locally', async () => {
    const kept = await split({ auditRate: 0 }, { share: 0.5 }, [0.1, 0.9]);
    for (let i = 0; i < 2; i++) expect((await kept.escalator.infer('digits', input())).answeredBy).toBe('edge');
    expect(kept.svc.abReport('digits')).toMatchObject({ candidate: { requests: 1, escalations: 0 }, control: { requests: 1, escalations: 0 } });
    await kept.svc.close();
    await pool.close();

    const cloudFirst = await split({ mode: 'always-cloud', budgetMs: 5_000 }, { share: 0.5 });
    expect((await cloudFirst.escalator.infer('digits', input())).answeredBy).toBe('cloud');
    expect(cloudFirst.svc.abReport('digits')).toMatchObject({ candidate: { requests: 0, escalations: 0 }, control: { requests: 0, escalations: 0 } });
  });

  it("routes a model with an escalation policy by the request's sticky key, every time", async () => {
    // Unkeyed requests would draw 0.99 (control); the key hashes onto the candidate's share.
    const { svc, escalator } = await split({ auditRate: 0 }, { share: 0.5, sticky: 'x-user' }, Array(8).fill(0.99));
    const key = Array.from({ length: 50 }, (_, k) => `user-${k}`).find((k) => stickyPoint(k, CANDIDATE) < 0.5)!;
    const stickyKey = (name: string): string | undefined => (name === 'x-user' ? key : undefined);
    for (let i = 0; i < 3; i++) {
      const res = await escalator.infer('digits', input(), { stickyKey });
      expect([res.answeredBy, res.version, res.arm]).toEqual(['edge', CANDIDATE, 'candidate']);
    }
    const unkeyed = await escalator.infer('digits', input());
    expect([unkeyed.version, unkeyed.arm]).toEqual(['1.0.0', 'control']);
    expect(svc.abReport('digits')).toMatchObject({ candidate: { requests: 3 }, control: { requests: 1 } });
  });
});
