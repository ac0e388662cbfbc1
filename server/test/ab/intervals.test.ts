import { describe, expect, it } from 'vitest';
import type { AbArmKpis, AbReport } from '@flotilla/protocol';
import { meanDifference, meanInterval, proportionDifference, wilson } from '../../src/ab/intervals.ts';
import { compareArms } from '../../src/ab/ab-comparison.ts';

// Reference values: Newcombe (1998), Statistics in Medicine 17, tables I and II (95 %, four decimals).
describe('confidence intervals', () => {
  it('gives Wilson score intervals that match the published values, including at zero successes', () => {
    expect(wilson(81, 263)).toMatchObject({ low: expect.closeTo(0.2553, 4), high: expect.closeTo(0.3662, 4) });
    expect(wilson(1, 29)).toMatchObject({ low: expect.closeTo(0.0061, 4), high: expect.closeTo(0.1718, 4) });
    expect(wilson(0, 10)).toMatchObject({ estimate: 0, low: 0, high: expect.closeTo(0.2775, 4) });
  });

  it('gives Newcombe hybrid score intervals for a difference of proportions that match the published values', () => {
    expect(proportionDifference(56, 70, 48, 80)).toMatchObject({ estimate: expect.closeTo(0.2, 9), low: expect.closeTo(0.0524, 4), high: expect.closeTo(0.3339, 4) });
    expect(proportionDifference(9, 10, 3, 10)).toMatchObject({ low: expect.closeTo(0.1705, 4), high: expect.closeTo(0.809, 4) });
  });

  it('computes the normal interval of a mean and Welch’s interval of a difference of means from sums', () => {
    // Samples 1, 2, 3, 4: mean 2.5, s² = 5/3. Samples 0, 1, 2, 3 shifted: mean 1.5, s² = 1/3.
    const a = { n: 4, sum: 10, sumSq: 30 };
    const b = { n: 4, sum: 6, sumSq: 10 };
    const half = 1.959963984540054 * Math.sqrt(5 / 3 / 4);
    expect(meanInterval(a)).toMatchObject({ estimate: 2.5, low: expect.closeTo(2.5 - half, 9), high: expect.closeTo(2.5 + half, 9) });
    const halfD = 1.959963984540054 * Math.sqrt(5 / 3 / 4 + 1 / 3 / 4);
    expect(meanDifference(a, b)).toMatchObject({ estimate: 1, low: expect.closeTo(1 - halfD, 9), high: expect.closeTo(1 + halfD, 9) });
  });

  it('has nothing to estimate from no samples, and no width from one', () => {
    expect(wilson(0, 0)).toEqual({ estimate: null, low: null, high: null });
    expect(meanInterval({ n: 1, sum: 3, sumSq: 9 })).toEqual({ estimate: 3, low: null, high: null });
    expect(meanDifference({ n: 0, sum: 0, sumSq: 0 }, { n: 5, sum: 5, sumSq: 5 })).toEqual({ estimate: null, low: null, high: null });
  });
});

function arm(version: string, requests: number, errors: number, latencyMs: number, confidence: number, escalations = 0): AbArmKpis {
  const ok = requests - errors;
  return {
    version,
    requests,
    errors,
    latencyCount: ok,
    latencySumMs: ok * latencyMs,
    latencySumSqMs: ok * latencyMs * latencyMs * 1.01,
    p50Ms: latencyMs,
    p95Ms: latencyMs * 2,
    confidenceCount: ok,
    confidenceSum: ok * confidence,
    confidenceSumSq: ok * confidence * confidence * 1.001,
    escalations,
  };
}

const report = (control: AbArmKpis, candidate: AbArmKpis): AbReport => ({ share: 0.5, since: 0, control, candidate });

describe('compareArms', () => {
  it('pools the devices of the candidate most of them report and gives candidate − control', () => {
    const c = compareArms('digits', [
      { deviceId: 'a', report: report(arm('1.0.0', 100, 1, 2, 0.9, 5), arm('1.1.0', 100, 3, 3, 0.95, 2)) },
      { deviceId: 'b', report: report(arm('1.0.1', 300, 3, 2, 0.9, 15), arm('1.1.0', 100, 5, 3, 0.95, 6)) },
      { deviceId: 'c', report: report(arm('1.0.0', 50, 0, 2, 0.9), arm('0.9.0', 50, 0, 3, 0.95)) },
    ]);
    expect(c.candidate).toBe('1.1.0');
    expect(c.arms.control).toMatchObject({ versions: ['1.0.0', '1.0.1'], devices: 2, requests: 400, errors: 4, escalations: 20, share: 400 / 600 });
    expect(c.arms.candidate).toMatchObject({ versions: ['1.1.0'], devices: 2, requests: 200, errors: 8, escalations: 8 });
    expect(c.arms.candidate.errorRate).toEqual(wilson(8, 200));
    expect(c.difference.errorRate).toEqual(proportionDifference(8, 200, 4, 400));
    expect(c.difference.meanLatencyMs.estimate).toBeCloseTo(1, 9);
    expect(c.latencyRatio).toBeCloseTo(1.5, 9);
    expect(c.difference.meanConfidence.estimate).toBeCloseTo(0.05, 9);
  });

  it('compares the candidate asked for, and reports empty arms when no device has a split', () => {
    const only = compareArms('digits', [{ deviceId: 'c', report: report(arm('1.0.0', 50, 0, 2, 0.9), arm('0.9.0', 50, 0, 3, 0.95)) }], '0.9.0');
    expect(only.arms.candidate.requests).toBe(50);
    const none = compareArms('digits', []);
    expect(none).toMatchObject({ candidate: null, latencyRatio: null, arms: { control: { requests: 0, share: null }, candidate: { requests: 0 } } });
  });
});
