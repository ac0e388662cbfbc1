import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModels, EVAL_SET_FILE, modelDir, modelPath } from '@flotilla/modelkit';
// The pool worker depends on the agent package, so the agent's tests reach it by path rather than
// by a workspace dependency (which would make a cycle).
import { buildPoolWorker, type PoolWorker } from '../../../packages/pool/src/index.ts';
import { CloudClient } from '../../src/escalation/cloud-client.ts';
import { Escalator, type EscalatedResult } from '../../src/escalation/escalator.ts';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { MODELS_DIR } from '../local-api/models.ts';
import { tempDirAll } from './temp-dir-all.ts';
import { startBlackhole } from './kserve-test-pool.ts';

/** Integration with the real pool worker (packages/pool) serving the cloud fp32 MNIST model. */
describe('escalation to the pool worker', () => {
  let worker: PoolWorker;
  let poolUrl: string;
  let service: InferenceService;
  let digits: { rows: Float32Array[]; labels: number[] };
  const enqueued: Array<Record<string, unknown>> = [];
  const hole = startBlackhole();

  beforeAll(async () => {
    await buildModels(MODELS_DIR, { only: ['mnist-edge-int8', 'mnist-cloud-fp32'] });
    const repo = tempDirAll('flotilla-pool-repo-');
    mkdirSync(join(repo, 'mnist-cloud', '1'), { recursive: true });
    copyFileSync(modelPath(MODELS_DIR, 'mnist-cloud-fp32'), join(repo, 'mnist-cloud', '1', 'model.onnx'));
    worker = buildPoolWorker({ config: { modelRepository: repo, host: '127.0.0.1', port: 0 } });
    await worker.start();
    poolUrl = await worker.listen({ host: '127.0.0.1', port: 0 });
    service = new InferenceService({ warmupRuns: 1 });
    await service.load({ model: 'mnist-edge', version: '1.0.0', path: modelPath(MODELS_DIR, 'mnist-edge-int8'), format: 'onnx', providers: ['cpu'] });
    const evalSet = JSON.parse(readFileSync(join(modelDir(MODELS_DIR, 'mnist-edge-int8'), EVAL_SET_FILE), 'utf8')) as { data: number[][]; labels: number[] };
    const rows = evalSet.data.slice(0, 60).map((r) => Float32Array.from(r));
    digits = { rows, labels: evalSet.labels.slice(0, 60) };
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([service?.close(), worker?.close(), (await hole).close()]);
  });

  const digit = (i: number): Tensor[] => [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Float32Array.from(digits.rows[i]!) }];

  it('sends unsure digits to the pool, answers sure ones locally, and keeps a hard example per escalation', async () => {
    const cloud = new CloudClient({ probeIntervalMs: 0 });
    const escalator = new Escalator({ local: service, cloud, enqueueEvent: (_k, data) => enqueued.push(data) });
    escalator.configure({ 'mnist-edge': { policy: { maxProbBelow: 0.9, cloudModel: 'mnist-cloud', budgetMs: 2_000 }, routes: [{ pool: 'local', endpoints: [poolUrl] }] } });
    try {
      const answers: EscalatedResult[] = [];
      for (let i = 0; i < digits.rows.length; i++) answers.push(await escalator.infer('mnist-edge', digit(i)));
      await new Promise((r) => setImmediate(r));
      const byWhere = (w: string) => answers.filter((a) => a.answeredBy === w);
      expect(byWhere('cloud').length).toBeGreaterThan(0);
      expect(byWhere('edge').length).toBeGreaterThan(byWhere('cloud').length);
      expect(byWhere('edge-fallback')).toHaveLength(0);
      for (const a of byWhere('cloud')) {
        expect(a.reason.policy).toBe('max-prob');
        expect(a.version).toBe('1');
        const p = a.outputs[0]!.data as Float32Array;
        expect(p.length).toBe(10);
        expect(p.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 4);
      }
      for (const a of byWhere('edge')) expect(a.reason.value).toBeGreaterThanOrEqual(0.9);
      expect(enqueued.filter((e) => e.answeredBy === 'cloud')).toHaveLength(byWhere('cloud').length);
    } finally {
      await cloud.close();
    }
  });

  it('reaches the pool past a silent endpoint listed first', async () => {
    const cloud = new CloudClient({ probeIntervalMs: 0 });
    const escalator = new Escalator({ local: service, cloud });
    const silent = (await hole).url;
    escalator.configure({ 'mnist-edge': { policy: { mode: 'always-cloud', cloudModel: 'mnist-cloud', budgetMs: 1_000 }, routes: [{ pool: 'silent', endpoints: [silent] }, { pool: 'local', endpoints: [poolUrl] }] } });
    try {
      const r = await escalator.infer('mnist-edge', digit(0));
      expect(r).toMatchObject({ answeredBy: 'cloud', parameters: { flotilla_pool: 'local' } });
    } finally {
      await cloud.close();
    }
  });
});
