import { describe, expect, it } from 'vitest';
import { compareToGolden } from '../src/index.ts';
import type { Golden } from '../src/index.ts';
import { shortestFloat32, toleranceFor } from '../src/golden.ts';

const golden: Golden = {
  inputs: { input: { dtype: 'float32', shape: [1, 2], data: [0, 1] } },
  outputs: { probabilities: { dtype: 'float32', shape: [1, 2], data: [0.25, 0.75] } },
  tolerance: 0.01,
};

describe('golden comparison', () => {
  it('passes outputs within the tolerance and reports the largest difference', () => {
    const r = compareToGolden(golden, { probabilities: { data: Float32Array.of(0.255, 0.745), dims: [1, 2] } });
    expect(r.pass).toBe(true);
    expect(r.maxAbsDiff).toBeCloseTo(0.005, 6);
  });

  it('fails outputs beyond the tolerance', () => {
    expect(compareToGolden(golden, { probabilities: { data: Float32Array.of(0.3, 0.7), dims: [1, 2] } }).pass).toBe(false);
  });

  it('fails a missing output, a wrong shape and NaN values with an infinite difference', () => {
    const cases: Array<Record<string, { data: Float32Array; dims: number[] }>> = [
      {},
      { probabilities: { data: Float32Array.of(0.25, 0.75), dims: [2, 1] } },
      { probabilities: { data: Float32Array.of(Number.NaN, 0.75), dims: [1, 2] } },
    ];
    for (const outputs of cases) {
      const r = compareToGolden(golden, outputs);
      expect(r.pass).toBe(false);
      expect(r.maxAbsDiff).toBe(Infinity);
      expect(r.reason).toBeTruthy();
    }
  });

  it('rounds tolerances up to two significant digits, never below the floor', () => {
    expect(toleranceFor(0.0123)).toBe(0.019);
    expect(toleranceFor(0)).toBe(0.0001);
  });

  it('writes float32 values as the shortest decimal that reads back exactly', () => {
    expect(shortestFloat32(Math.fround(0.988))).toBe(0.988);
    expect(Math.fround(shortestFloat32(Math.fround(Math.PI)))).toBe(Math.fround(Math.PI));
  });
});
