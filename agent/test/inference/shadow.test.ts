import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import { ShadowAccumulator, ShadowRun } from '../../src/inference/shadow.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { buildFixtures, goldenInput, type BuiltModels } from './model-fixtures.ts';

const scores = (rows: number[][]): Tensor => ({ name: 'probs', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) });

describe('ShadowAccumulator', () => {
  it('counts top-1 agreement per batch row and the mean absolute output difference', () => {
    const acc = new ShadowAccumulator('2.0.0');
    acc.record([scores([[0.9, 0.1], [0.2, 0.8]])], [scores([[0.7, 0.3], [0.6, 0.4]])], 3, 5);
    const r = acc.report();
    expect(r).toMatchObject({ candidate: '2.0.0', samples: 2, agreement: 0.5, activeP50Ms: 3, candidateP50Ms: 5, dropped: 0 });
    expect(r.meanAbsDiff).toBeCloseTo((0.2 + 0.2 + 0.4 + 0.4) / 4, 6);
  });

  it('reports nothing measured before the first sample, and counts a failed mirror as a disagreeing sample', () => {
    const acc = new ShadowAccumulator('2.0.0');
    expect(acc.report()).toEqual({ candidate: '2.0.0', samples: 0, agreement: null, meanAbsDiff: null, activeP50Ms: null, candidateP50Ms: null, dropped: 0 });
    acc.record([scores([[1, 0]])], [scores([[1, 0]])], 1, 1);
    acc.fail();
    expect(acc.report()).toMatchObject({ samples: 2, agreement: 0.5 });
  });

  it('takes the median latency of each version', () => {
    const acc = new ShadowAccumulator('2.0.0');
    for (const [a, c] of [[1, 10], [3, 30], [2, 20], [4, 40]] as const) acc.record([scores([[1, 0]])], [scores([[1, 0]])], a, c);
    expect(acc.report()).toMatchObject({ activeP50Ms: 2.5, candidateP50Ms: 25 });
  });
});

describe('ShadowRun', () => {
  it('mirrors the configured share of requests by the injected draw', () => {
    const draws = [0.1, 0.5, 0.29, 0.9];
    const run = new ShadowRun('2.0.0', { share: 0.3, maxInFlight: 10 }, () => draws.shift()!);
    expect([run.take(), run.take(), run.take(), run.take()]).toEqual([true, false, true, false]);
  });

  it('drops, and counts, a request that arrives while every mirror slot is busy', () => {
    const run = new ShadowRun('2.0.0', { share: 1, maxInFlight: 1 });
    expect(run.take()).toBe(true);
    expect(run.take()).toBe(false);
    run.release();
    expect(run.take()).toBe(true);
    expect(run.stats.report().dropped).toBe(1);
    run.stop();
    run.release();
    expect(run.take()).toBe(false);
  });

  it('refuses a share outside (0, 1]', () => {
    expect(() => new ShadowRun('2.0.0', { share: 0 })).toThrow(RangeError);
    expect(() => new ShadowRun('2.0.0', { share: 1.5 })).toThrow(RangeError);
  });
});

describe('InferenceService shadow runs (real onnxruntime)', () => {
  let models: BuiltModels;
  beforeAll(async () => {
    models = await buildFixtures(['mnist-edge-int8', 'mnist-edge-fp32']);
  }, 120_000);
  afterAll(() => models?.cleanup());

  async function serviceWithCandidate(): Promise<InferenceService> {
    const svc = new InferenceService({ warmupRuns: 1 });
    onTestFinished(() => svc.close());
    await svc.load(models.spec('mnist-edge-int8', { model: 'digits', version: '1.0.0' }));
    await svc.stage(models.spec('mnist-edge-fp32', { model: 'digits', version: '1.1.0' }));
    return svc;
  }

  async function settle(svc: InferenceService, samples: number): Promise<void> {
    for (let i = 0; i < 200 && (svc.shadowReport('digits')?.samples ?? 0) < samples; i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('answers from the active version while the staged candidate sees the same requests', async () => {
    const svc = await serviceWithCandidate();
    const input = goldenInput(models.card('mnist-edge-int8'));
    const rows = input[0]!.shape[0]!;
    svc.startShadow('digits', { share: 1 });
    const res = await svc.infer('digits', input, { transferInputs: true });
    expect(res.version).toBe('1.0.0');
    await settle(svc, rows);
    const report = svc.shadowReport('digits');
    expect(report).toMatchObject({ candidate: '1.1.0', samples: rows });
    // fp32 and int8 builds of the same network: mostly the same class, small output distance.
    expect(report?.agreement).toBeGreaterThan(0.9);
    expect(report?.meanAbsDiff).toBeGreaterThan(0);
  });

  it('stops mirroring when the candidate is activated, and mirrors nothing for requests naming a version', async () => {
    const svc = await serviceWithCandidate();
    const input = () => goldenInput(models.card('mnist-edge-int8'));
    svc.startShadow('digits', { share: 1 });
    await svc.infer('digits', input(), { version: '1.0.0' });
    await new Promise((r) => setTimeout(r, 50));
    expect(svc.shadowReport('digits')?.samples).toBe(0);
    svc.activate('digits');
    expect(svc.shadowReport('digits')).toBeNull();
    expect((await svc.infer('digits', input())).version).toBe('1.1.0');
  });

  it('refuses to start a shadow run without a staged candidate', async () => {
    const svc = new InferenceService({ warmupRuns: 1 });
    onTestFinished(() => svc.close());
    await svc.load(models.spec('mnist-edge-int8', { model: 'digits', version: '1.0.0' }));
    expect(() => svc.startShadow('digits', { share: 1 })).toThrow(/no staged version/);
  });
});
