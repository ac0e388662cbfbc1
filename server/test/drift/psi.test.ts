import { describe, expect, it } from 'vitest';
import type { DriftSummary } from '@flotilla/protocol';
import { levelOf, mergeSummaries, psi, scoreSummary } from '../../src/drift/psi.ts';

const summary = (confidence: number[], classes: number[], hist: number[], mean = 0.2): DriftSummary => ({
  rows: confidence.reduce((a, b) => a + b, 0),
  input: { lo: 0, hi: 1, elements: hist.reduce((a, b) => a + b, 0), mean, std: 0.1, hist },
  confidence,
  classes,
});
const t = { warn: 0.1, threshold: 0.2, minRows: 100 };

describe('population stability index', () => {
  it('is zero for the same distribution at any scale', () => {
    expect(psi([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(0, 12);
  });

  it('grows with the shift: a small move stays under 0.1, swapped halves pass 0.2', () => {
    expect(psi([50, 50], [55, 45])!).toBeLessThan(0.1);
    expect(psi([80, 20], [20, 80])!).toBeGreaterThan(0.2);
  });

  it('stays finite when a bin is empty on one side, and is null with nothing to compare', () => {
    const v = psi([100, 0], [50, 50])!;
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeGreaterThan(0.2);
    expect(psi([0, 0], [1, 2])).toBeNull();
    expect(psi([1, 2], [])).toBeNull();
  });

  it('treats a class missing from the shorter list as zero', () => {
    expect(psi([5, 5, 0], [5, 5])).toBeCloseTo(0, 12);
  });
});

describe('summaries', () => {
  it('pool by adding counts and combining the input moments', () => {
    const a = summary([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], [10], [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
    const b = summary([0, 0, 0, 0, 0, 0, 0, 0, 0, 30], [0, 30], [0, 0, 0, 0, 0, 0, 0, 0, 0, 30], 1);
    a.input.std = 0;
    b.input.std = 0;
    const m = mergeSummaries([a, b])!;
    expect(m.rows).toBe(40);
    expect(m.classes).toEqual([10, 30]);
    expect(m.input.mean).toBeCloseTo(0.75, 12);
    expect(m.input.std).toBeCloseTo(Math.sqrt(0.75 * 0.25), 12);
    expect(m.input.hist[0]).toBe(10);
  });

  it('score the largest index of the three distributions, and too few rows as insufficient', () => {
    const ref = summary([0, 0, 0, 0, 0, 0, 0, 0, 50, 150], [100, 100], [150, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
    const same = scoreSummary(ref, ref, t);
    expect(same).toMatchObject({ rows: 200, psi: 0, level: 'ok' });
    // Brighter inputs, same answers: the input index alone decides.
    const brighter = scoreSummary(ref, summary([0, 0, 0, 0, 0, 0, 0, 0, 50, 150], [100, 100], [50, 0, 0, 0, 0, 0, 0, 0, 0, 150]), t);
    expect(brighter.confidence).toBe(0);
    expect(brighter.psi).toBe(brighter.input);
    expect(brighter.level).toBe('drift');
    expect(scoreSummary(ref, summary([0, 0, 0, 0, 0, 0, 0, 0, 5, 15], [10, 10], [15, 0, 0, 0, 0, 0, 0, 0, 0, 5]), t).level).toBe('insufficient');
    expect([levelOf(0.05, 500, t), levelOf(0.15, 500, t), levelOf(0.2, 500, t), levelOf(null, 500, t)]).toEqual(['ok', 'warn', 'drift', 'insufficient']);
  });
});
