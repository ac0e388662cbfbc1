import { compareToGolden, type Golden } from '@flotilla/modelkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareGolden } from '../../src/inference/host/golden-compare.ts';
import { selfTest } from '../../src/inference/host/self-test.ts';
import { OnnxRuntimeBackend } from '../../src/inference/onnx/onnxruntime-backend.ts';
import type { LoadedModel, Tensor } from '../../src/inference/types.ts';
import { buildFixtures, type BuiltModels } from './model-fixtures.ts';

let models: BuiltModels;
const backend = new OnnxRuntimeBackend();

beforeAll(async () => {
  models = await buildFixtures(['tiny-mlp-fp32', 'mnist-edge-int8', 'mnist-edge-int8-bad-golden']);
}, 120_000);

afterAll(async () => {
  await backend.close();
  models?.cleanup();
});

describe('selfTest', () => {
  it('passes a good build and fails a build whose outputs drifted, after warm-up runs', async () => {
    const golden = models.card('mnist-edge-int8').golden;
    const good = await backend.load(models.spec('mnist-edge-int8'));
    const bad = await backend.load(models.spec('mnist-edge-int8-bad-golden'));
    let calls = 0;
    const counting: LoadedModel = { ...good, infer: (inputs) => (calls++, good.infer(inputs)), unload: () => good.unload() };
    expect(await selfTest(counting, golden, { warmupRuns: 2 })).toMatchObject({ pass: true });
    expect(calls).toBe(3);
    const result = await selfTest(bad, golden);
    expect(result.pass).toBe(false);
    expect(result.maxAbsDiff).toBeGreaterThan(golden.tolerance);
  });

  it('fails, without throwing, when the model cannot run the golden inputs', async () => {
    const loaded = await backend.load(models.spec('tiny-mlp-fp32'));
    const mnistGolden = models.card('mnist-edge-int8').golden;
    expect(await selfTest(loaded, mnistGolden)).toMatchObject({ pass: false, maxAbsDiff: Infinity });
  });
});

describe('compareGolden', () => {
  it("gives the model kit's compareToGolden verdict on passing, drifted, misshapen, missing and NaN outputs", () => {
    const golden: Golden = {
      inputs: {},
      outputs: { y: { dtype: 'float32', shape: [1, 3], data: [0.1, 0.2, 0.7] } },
      tolerance: 0.01,
    };
    const out = (data: number[], dims = [1, 3]): Record<string, { data: unknown; dims: readonly number[] }> => ({ y: { data: Float32Array.from(data), dims } });
    const cases = [
      out([0.1, 0.2, 0.7]),
      out([0.105, 0.2, 0.695]),
      out([0.2, 0.2, 0.6]),
      out([0.1, 0.2, 0.7], [3, 1]),
      out([0.1, 0.2]),
      out([Number.NaN, 0.2, 0.7]),
      {},
    ];
    for (const c of cases) expect(compareGolden(golden, c)).toEqual(compareToGolden(golden, c));
  });

  it('agrees with the model kit on real outputs of a real build', async () => {
    const card = models.card('mnist-edge-int8');
    const loaded = await backend.load(models.spec('mnist-edge-int8'));
    const inputs: Tensor[] = Object.entries(card.golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32', shape: [...t.shape], data: Float32Array.from(t.data) }));
    const outputs = Object.fromEntries((await loaded.infer(inputs)).map((t) => [t.name, { data: t.data, dims: t.shape }]));
    expect(compareGolden(card.golden, outputs)).toEqual(compareToGolden(card.golden, outputs));
  });
});
