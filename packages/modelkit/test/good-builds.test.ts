import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { modelPath, runGoldenSelfTest } from '../src/index.ts';
import { card, modelsDir, session } from './helpers.ts';

const GOOD = ['tiny-mlp-fp32', 'tiny-mlp-int8-static', 'tiny-mlp-int8-dynamic', 'mnist-edge-int8', 'mnist-edge-fp32', 'mnist-cloud-fp32', 'heavy-conv-fp32', 'wide-mlp-fp32'];

describe.each(GOOD)('%s', (name) => {
  it('loads in onnxruntime-node with the inputs and outputs its card declares', async () => {
    const c = await card(name);
    const s = await session(name);
    expect(s.inputNames).toEqual(c.inputs.map((i) => i.name));
    expect(s.outputNames).toEqual(c.outputs.map((o) => o.name));
    expect(c.format).toBe('onnx');
    expect(c.opset).toBeGreaterThanOrEqual(13);
  });

  it('passes its golden self-test', async () => {
    const c = await card(name);
    const result = await runGoldenSelfTest(await session(name), c.golden);
    expect(result.pass, result.reason).toBe(true);
    expect(result.maxAbsDiff).toBeLessThanOrEqual(c.golden.tolerance);
  });

  it('returns one probability row per input row, each summing to 1', async () => {
    const c = await card(name);
    const input = c.inputs[0];
    const width = input?.shape.slice(1).reduce((a, b) => a * b, 1) ?? 0;
    const rows = 3;
    const data = new Float32Array(rows * width).map((_, i) => (i % 7) / 7);
    const out = await (await session(name)).run({ [input?.name ?? '']: new ort.Tensor('float32', data, [rows, ...(input?.shape.slice(1) ?? [])]) });
    const probs = out.probabilities;
    const classes = c.outputs[0]?.shape[1] ?? 0;
    expect(probs?.dims).toEqual([rows, classes]);
    for (let r = 0; r < rows; r++) {
      const sum = Array.from((probs?.data as Float32Array).subarray(r * classes, (r + 1) * classes)).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 4);
    }
    if (c.labels) expect(c.labels).toHaveLength(classes);
  });

  it('records the sha256 and length of the file it describes', async () => {
    const c = await card(name);
    const bytes = await readFile(modelPath(modelsDir(), name));
    expect(c.bytes).toBe(bytes.length);
    expect(c.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});
