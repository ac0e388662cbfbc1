import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRIFT_SUMMARY_EVENT, DriftSummaryData } from '@flotilla/protocol';
import { Compile } from 'typebox/compile';
import { DriftAccumulator, DriftRecorder } from '../../src/inference/drift-summary.ts';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { FakeTimers } from '../helpers/fake-timers.ts';
import { buildFixtures, goldenInput, type BuiltModels } from './model-fixtures.ts';

const checkData = Compile(DriftSummaryData);
const input = (values: number[]): Tensor => ({ name: 'input', datatype: 'FP32', shape: [1, values.length], data: Float32Array.from(values) });
const probs = (rows: number[][]): Tensor => ({ name: 'p', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) });

describe('DriftAccumulator', () => {
  it('bins input values over its range, putting values outside into the end bins', () => {
    const acc = new DriftAccumulator([0, 1]);
    acc.addInputs([input([0, 0.05, 0.15, 0.55, 0.99, 1, -3, 7])]);
    const s = acc.summary();
    expect(s.input.hist).toEqual([3, 1, 0, 0, 0, 1, 0, 0, 0, 3]);
    expect(s.input.elements).toBe(8);
    expect(s.input.mean).toBeCloseTo((0 + 0.05 + 0.15 + 0.55 + 0.99 + 1 - 3 + 7) / 8, 5);
  });

  it('counts top-1 confidence and predicted class per output row, softmaxing logits', () => {
    const acc = new DriftAccumulator();
    acc.addOutputs([probs([[0.1, 0.85, 0.05], [0.5, 0.2, 0.3], [0, 0, 1]])]);
    // Logits: softmax of [0, 0, 10] gives the third class about 0.9999.
    acc.addOutputs([probs([[0, 0, 10]])]);
    const s = acc.summary();
    expect(s.rows).toBe(4);
    expect(s.classes).toEqual([1, 1, 2]);
    expect(s.confidence).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 1, 2]);
  });

  it('reads at most a few thousand elements of a large input, with a stride', () => {
    const acc = new DriftAccumulator();
    acc.addInputs([input(new Array<number>(100_000).fill(0.5))]);
    expect(acc.summary().input.elements).toBeLessThanOrEqual(4096);
    expect(acc.summary().input.hist[5]).toBe(acc.summary().input.elements);
  });

  it('refuses an empty input range', () => {
    expect(() => new DriftAccumulator([1, 1])).toThrow(RangeError);
  });
});

describe('DriftRecorder', () => {
  it('publishes one valid summary per model version per window, only for windows that saw requests', () => {
    const timers = new FakeTimers();
    const sent: Array<{ kind: string; data: DriftSummaryData }> = [];
    const rec = new DriftRecorder({ intervalMs: 1000, timers, publish: (kind, data) => sent.push({ kind, data }) });
    rec.start();
    rec.observe('digits', '1.0.0', [input([0.2, 0.8])])?.([probs([[0.9, 0.1]])]);
    rec.observe('digits', '1.1.0', [input([0.2, 0.8])])?.([probs([[0.2, 0.8]])]);
    // A request that failed never calls back: it leaves no trace.
    rec.observe('digits', '1.0.0', [input([0.5, 0.5])]);
    timers.advance(1000);
    expect(sent.map((s) => [s.kind, s.data.version, s.data.summary.rows])).toEqual([
      [DRIFT_SUMMARY_EVENT, '1.0.0', 1],
      [DRIFT_SUMMARY_EVENT, '1.1.0', 1],
    ]);
    for (const s of sent) expect(checkData.Check(s.data)).toBe(true);
    expect(sent[0]!.data.summary.input.elements).toBe(2);

    timers.advance(5000);
    expect(sent).toHaveLength(2);
    rec.observe('digits', '1.0.0', [input([0.2])])?.([probs([[0.9, 0.1]])]);
    rec.close();
    rec.close();
    expect(sent).toHaveLength(3);
    expect(sent[2]!.data.summary.rows).toBe(1);
    expect(timers.pendingDelays).toEqual([]);
  });

  it('summarizes one request in sampleEvery', () => {
    const timers = new FakeTimers();
    const sent: DriftSummaryData[] = [];
    const rec = new DriftRecorder({ sampleEvery: 4, timers, publish: (_k, data) => sent.push(data) });
    for (let i = 0; i < 8; i++) rec.observe('m', '1', [input([0.1])])?.([probs([[1, 0]])]);
    rec.close();
    expect(sent[0]!.summary.rows).toBe(2);
  });
});

describe('InferenceService with a drift recorder', () => {
  let models: BuiltModels;
  beforeAll(async () => {
    models = await buildFixtures(['mnist-edge-fp32']);
  }, 120_000);
  afterAll(() => models?.cleanup());

  it('summarizes the inputs and outputs of real requests, even when the inputs are moved to the worker', async () => {
    const timers = new FakeTimers();
    const sent: DriftSummaryData[] = [];
    const recorder = new DriftRecorder({ timers, publish: (_k, data) => sent.push(data) });
    const service = new InferenceService({ observer: recorder, warmupRuns: 0 });
    try {
      await service.load(models.spec('mnist-edge-fp32', { model: 'digits', version: '1.0.0' }));
      const card = models.card('mnist-edge-fp32');
      for (let i = 0; i < 3; i++) await service.infer('digits', goldenInput(card), { transferInputs: true });
      recorder.flush();
      expect(sent).toHaveLength(1);
      const rows = card.golden.inputs.input!.shape[0]!;
      expect(sent[0]!.summary.rows).toBe(3 * rows);
      expect(sent[0]!.summary.input.elements).toBe(3 * rows * 784);
      expect(sent[0]!.summary.classes.reduce((a, b) => a + b, 0)).toBe(3 * rows);
    } finally {
      recorder.close();
      await service.close();
    }
  });
});
