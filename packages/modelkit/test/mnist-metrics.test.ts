import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { EVAL_SET_FILE, METRICS_FILE, loadAllDigits, measureClassifier, splitDigits } from '../src/index.ts';
import type { EvalSet } from '../src/index.ts';
import { MNIST_SPLIT } from '../src/mnist/export.ts';
import { argmaxRows } from '../src/mnist/evaluate.ts';
import { card, readJson, session } from './helpers.ts';

const CLASSIFIERS = ['mnist-edge-int8', 'mnist-edge-fp32', 'mnist-cloud-fp32'];

describe('MNIST classifiers', () => {
  const { test: testSet } = splitDigits(loadAllDigits(), MNIST_SPLIT.seed, MNIST_SPLIT.trainCount);

  it.each(CLASSIFIERS)('%s reports the accuracy its ONNX file really has on the 2,000 test digits', async (name) => {
    const c = await card(name);
    const measured = await measureClassifier(await session(name), testSet);
    expect(testSet.count).toBe(2000);
    for (const [key, value] of Object.entries(measured)) expect(c.metrics[key], key).toBe(value);
    const file = await readJson<{ metrics: Record<string, number> }>(name, METRICS_FILE);
    expect(file.metrics).toEqual(c.metrics);
  });

  it('the edge model is far above chance and the cloud model is more accurate than the edge model', async () => {
    const [edge, edgeFp32, cloud] = await Promise.all(CLASSIFIERS.map(card));
    const edgeAccuracy = edge?.metrics.testAccuracy ?? 0;
    expect(edgeAccuracy).toBeGreaterThan(0.85);
    expect(cloud?.metrics.testAccuracy).toBeGreaterThan(edgeAccuracy + 0.01);
    expect(Math.abs(edgeAccuracy - (edgeFp32?.metrics.testAccuracy ?? 0))).toBeLessThan(0.01);
    // The cloud model is also less often unsure, which is what escalation relies on.
    expect(cloud?.metrics.lowConfidenceFraction).toBeLessThan(edge?.metrics.lowConfidenceFraction ?? 0);
  });

  it.each(CLASSIFIERS)('%s ships labels 0-9 and a 200-digit evaluation set of real test digits', async (name) => {
    const c = await card(name);
    expect(c.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(c.inputs).toEqual([expect.objectContaining({ name: 'input', dtype: 'float32', shape: [-1, 784], range: [0, 1] })]);
    expect(c.outputs).toEqual([expect.objectContaining({ name: 'probabilities', shape: [-1, 10] })]);
    const evalSet = await readJson<EvalSet>(name, c.files.evalSet ?? EVAL_SET_FILE);
    expect(evalSet.shape).toEqual([200, 784]);
    expect(evalSet.labels).toEqual(Array.from(testSet.y.subarray(0, 200)));
    const pixels = Float32Array.from(evalSet.data.flat());
    // Byte comparison: the file must hold exactly the test digits, and it is fast on 156,800 values.
    expect(Buffer.from(pixels.buffer).equals(Buffer.from(testSet.x.buffer, 0, 200 * 784 * 4))).toBe(true);
    const out = await (await session(name)).run({ input: new ort.Tensor('float32', pixels, evalSet.shape) });
    const correct = argmaxRows(out.probabilities?.data as Float32Array).filter((p, i) => p.label === evalSet.labels[i]).length;
    expect(correct / 200).toBeGreaterThan(0.85);
  });
});
