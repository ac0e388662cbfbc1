import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { SeededRandom } from '../src/random.ts';
import { maxAbsDiff } from '../src/golden.ts';
import { EVAL_SET_FILE } from '../src/index.ts';
import type { EvalSet } from '../src/index.ts';
import { card, readJson, session } from './helpers.ts';

async function probabilities(name: string, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const out = await (await session(name)).run({ input: new ort.Tensor('float32', data, dims) });
  return out.probabilities?.data as Float32Array;
}

describe('int8 builds', () => {
  it.each(['tiny-mlp-int8-static', 'tiny-mlp-int8-dynamic'])('%s agrees with tiny-mlp-fp32 within its tolerance on inputs it never saw', async (name) => {
    const c = await card(name);
    const [lo, hi] = c.inputs[0]?.range ?? [-3, 3];
    const rng = new SeededRandom(777);
    const rows = 64;
    const data = new Float32Array(rows * 16).map(() => Math.max(lo, Math.min(hi, rng.normal())));
    const diff = maxAbsDiff(await probabilities('tiny-mlp-fp32', data, [rows, 16]), await probabilities(name, data, [rows, 16]));
    expect(diff).toBeGreaterThan(0); // really quantized, not a copy of fp32
    expect(diff).toBeLessThanOrEqual(c.golden.tolerance);
  });

  it('mnist-edge-int8 agrees with mnist-edge-fp32 within its tolerance on the evaluation set', async () => {
    const c = await card('mnist-edge-int8');
    const evalSet = await readJson<EvalSet>('mnist-edge-int8', EVAL_SET_FILE);
    const data = Float32Array.from(evalSet.data.flat());
    const diff = maxAbsDiff(await probabilities('mnist-edge-fp32', data, evalSet.shape), await probabilities('mnist-edge-int8', data, evalSet.shape));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThanOrEqual(c.golden.tolerance);
  });

  it('stores int8 weights, so the int8 edge build is several times smaller than its fp32 form', async () => {
    const [int8, fp32] = await Promise.all([card('mnist-edge-int8'), card('mnist-edge-fp32')]);
    expect(int8.precision).toBe('int8');
    expect(int8.quantization).toBe('static-qdq');
    expect(int8.bytes * 3).toBeLessThan(fp32.bytes);
  });
});
