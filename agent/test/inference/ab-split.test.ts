import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { AbSplitRun, ArmKpis, stickyPoint, topProbabilities } from '../../src/inference/ab-split.ts';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { buildFixtures, goldenInput, type BuiltModels } from './model-fixtures.ts';

/** A seeded generator (mulberry32), so the share tests draw the same numbers every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const versions = { control: '1.0.0', candidate: '1.1.0' };

/** Binomial tolerance: the count may be off its expectation by at most 4 standard deviations. */
function withinBinomial(hits: number, n: number, p: number): boolean {
  return Math.abs(hits - n * p) <= 4 * Math.sqrt(n * p * (1 - p));
}

describe('AbSplitRun', () => {
  it('sends the configured share of unkeyed requests to the candidate, within binomial tolerance', () => {
    for (const share of [0.1, 0.3, 0.5, 0.9]) {
      const run = new AbSplitRun('digits', versions, { share }, 0, seeded(7));
      let candidate = 0;
      for (let i = 0; i < 10_000; i++) if (run.pick() === 'candidate') candidate++;
      expect(withinBinomial(candidate, 10_000, share)).toBe(true);
    }
  });

  it('routes a sticky key to the same arm every time, and spreads distinct keys by the share', () => {
    const run = new AbSplitRun('digits', versions, { share: 0.25, sticky: 'x-user' }, 0, () => {
      throw new Error('a keyed request must not draw');
    });
    let candidate = 0;
    for (let k = 0; k < 4000; k++) {
      const first = run.pick(`user-${k}`);
      for (let again = 0; again < 3; again++) expect(run.pick(`user-${k}`)).toBe(first);
      if (first === 'candidate') candidate++;
    }
    expect(withinBinomial(candidate, 4000, 0.25)).toBe(true);
  });

  it('keeps every sticky caller of a smaller share on the candidate when the share grows', () => {
    const small = new AbSplitRun('digits', versions, { share: 0.2, sticky: 'x-user' }, 0);
    const large = new AbSplitRun('digits', versions, { share: 0.6, sticky: 'x-user' }, 0);
    for (let k = 0; k < 1000; k++) if (small.pick(`u${k}`) === 'candidate') expect(large.pick(`u${k}`)).toBe('candidate');
  });

  it('uses the random draw when the split has a sticky key but the request carries none', () => {
    const draws = [0.1, 0.9];
    const run = new AbSplitRun('digits', versions, { share: 0.5, sticky: 'x-user' }, 0, () => draws.shift()!);
    expect([run.pick(), run.pick()]).toEqual(['candidate', 'control']);
  });

  it('sends nothing to the candidate at share 0 and everything at share 1', () => {
    const none = new AbSplitRun('digits', versions, { share: 0 }, 0, () => 0);
    const all = new AbSplitRun('digits', versions, { share: 1, sticky: 'x-user' }, 0, () => 0.999);
    for (let i = 0; i < 100; i++) {
      expect(none.pick(`k${i}`)).toBe('control');
      expect(all.pick(i % 2 ? `k${i}` : undefined)).toBe('candidate');
    }
  });

  it('refuses a share outside [0, 1]', () => {
    expect(() => new AbSplitRun('digits', versions, { share: -0.1 }, 0)).toThrow(RangeError);
    expect(() => new AbSplitRun('digits', versions, { share: 1.2 }, 0)).toThrow(RangeError);
  });

  it('salts the sticky hash with the candidate, so a new candidate reshuffles callers', () => {
    let moved = 0;
    for (let k = 0; k < 200; k++) if (stickyPoint(`u${k}`, '1.1.0') < 0.5 !== stickyPoint(`u${k}`, '1.2.0') < 0.5) moved++;
    expect(moved).toBeGreaterThan(0);
  });
});

describe('ArmKpis', () => {
  const probs = (rows: number[][]): Tensor => ({ name: 'probs', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) });

  it('sums latency, confidence per row and their squares, and counts errors as requests', () => {
    const kpis = new ArmKpis('1.0.0');
    kpis.success(2, [probs([[0.75, 0.25], [0.5, 0.5]])]);
    kpis.success(4, [probs([[0.125, 0.875]])]);
    kpis.failure();
    expect(kpis.report()).toMatchObject({
      version: '1.0.0',
      requests: 3,
      errors: 1,
      latencyCount: 2,
      latencySumMs: 6,
      latencySumSqMs: 20,
      confidenceCount: 3,
      confidenceSum: 2.125,
      confidenceSumSq: 0.75 ** 2 + 0.25 + 0.875 ** 2,
      escalations: 0,
    });
  });

  it('scores logits through a softmax', () => {
    const [p] = topProbabilities({ name: 'logits', datatype: 'FP32', shape: [1, 2], data: Float32Array.from([Math.log(3), 0]) });
    expect(p).toBeCloseTo(0.75, 6);
  });
});

describe('InferenceService A/B splits (real onnxruntime)', () => {
  let models: BuiltModels;
  beforeAll(async () => {
    models = await buildFixtures(['mnist-edge-int8', 'mnist-edge-fp32']);
  }, 120_000);
  afterAll(() => models?.cleanup());

  async function serviceWithCandidate(random?: () => number): Promise<InferenceService> {
    const svc = new InferenceService({ warmupRuns: 1, ...(random && { random }) });
    onTestFinished(() => svc.close());
    await svc.load(models.spec('mnist-edge-int8', { model: 'digits', version: '1.0.0' }));
    await svc.stage(models.spec('mnist-edge-fp32', { model: 'digits', version: '1.1.0' }));
    return svc;
  }

  it('answers from whichever arm the request drew, says which, and counts each arm', async () => {
    const draws = [0.1, 0.7, 0.2, 0.9];
    const svc = await serviceWithCandidate(() => draws.shift()!);
    const input = () => goldenInput(models.card('mnist-edge-int8'));
    svc.startAb('digits', { share: 0.5 });
    const served = [];
    for (let i = 0; i < 4; i++) {
      const res = await svc.infer('digits', input(), { transferInputs: true });
      served.push([res.version, res.arm]);
    }
    expect(served).toEqual([
      ['1.1.0', 'candidate'],
      ['1.0.0', 'control'],
      ['1.1.0', 'candidate'],
      ['1.0.0', 'control'],
    ]);
    const report = svc.abReport('digits')!;
    expect(report.control).toMatchObject({ version: '1.0.0', requests: 2, errors: 0, latencyCount: 2 });
    expect(report.candidate).toMatchObject({ version: '1.1.0', requests: 2, errors: 0 });
    expect(report.candidate.confidenceCount).toBeGreaterThan(0);
    expect(report.candidate.confidenceSum / report.candidate.confidenceCount).toBeLessThanOrEqual(1);
    const metrics = await svc.registry.getSingleMetricAsString('flotilla_agent_ab_requests_total');
    expect(metrics).toContain('arm="candidate"');
    expect(metrics).toContain('arm="control"');
  });

  it('routes by the sticky key the caller supplies', async () => {
    const svc = await serviceWithCandidate(() => 0.5);
    svc.startAb('digits', { share: 0.5, sticky: 'x-user' });
    const input = () => goldenInput(models.card('mnist-edge-int8'));
    const key = Array.from({ length: 50 }, (_, k) => `user-${k}`).find((k) => stickyPoint(k, '1.1.0') < 0.5)!;
    for (let i = 0; i < 3; i++) {
      const res = await svc.infer('digits', input(), { stickyKey: (name) => (name === 'x-user' ? key : undefined) });
      expect(res.arm).toBe('candidate');
    }
  });

  it('ends the split cleanly on activation, and counts escalations for the arm that answered', async () => {
    const svc = await serviceWithCandidate(() => 0);
    svc.startAb('digits', { share: 0.5 });
    const res = await svc.infer('digits', goldenInput(models.card('mnist-edge-int8')));
    svc.noteEscalation('digits', res.version);
    expect(svc.abReport('digits')?.candidate.escalations).toBe(1);
    svc.activate('digits');
    expect(svc.abReport('digits')).toBeNull();
    const after = await svc.infer('digits', goldenInput(models.card('mnist-edge-int8')));
    expect(after.version).toBe('1.1.0');
    expect(after.arm).toBeUndefined();
  });

  it('refuses to split without a staged candidate', async () => {
    const svc = new InferenceService({ warmupRuns: 1 });
    onTestFinished(() => svc.close());
    await svc.load(models.spec('mnist-edge-int8', { model: 'digits', version: '1.0.0' }));
    expect(() => svc.startAb('digits', { share: 0.5 })).toThrow(/staged version/);
  });
});
