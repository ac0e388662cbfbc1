import { describe, expect, it } from 'vitest';
import { confidence } from '../../src/escalation/confidence.ts';
import { decideAfter, decideBefore, tensorBytes } from '../../src/escalation/policy.ts';
import type { Tensor } from '../../src/inference/types.ts';

const probs = (...p: number[]): Tensor[] => [{ name: 'probabilities', datatype: 'FP32', shape: [1, p.length], data: Float32Array.from(p) }];
const never = () => 0.999;

describe('confidence scores', () => {
  it('computes normalized entropy as −Σ p log p / log K, matching hand-computed values', () => {
    // Uniform over 4 classes: H = log 4, normalized 1.
    expect(confidence([0.25, 0.25, 0.25, 0.25]).entropy).toBeCloseTo(1, 12);
    // One-hot: H = 0.
    expect(confidence([0, 1, 0]).entropy).toBe(0);
    // [0.5, 0.5, 0, 0]: H = log 2, normalized log 2 / log 4 = 0.5.
    expect(confidence([0.5, 0.5, 0, 0]).entropy).toBeCloseTo(0.5, 12);
    // [0.7, 0.2, 0.1]: H = −(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) = 0.801819; / ln 3 (1.098612) = 0.729847.
    expect(confidence([0.7, 0.2, 0.1]).entropy).toBeCloseTo(0.729847, 5);
  });

  it('reads the top probability and the margin to the runner-up wherever they sit', () => {
    const c = confidence([0.1, 0.6, 0.05, 0.25]);
    expect(c.maxProb).toBeCloseTo(0.6, 6);
    expect(c.margin).toBeCloseTo(0.35, 6);
    expect(c.top).toBe(1);
    expect(confidence([0.3, 0.3, 0.4]).margin).toBeCloseTo(0.1, 6);
  });
});

describe('escalation policies', () => {
  it('max-prob escalates below its threshold and says value and threshold', () => {
    const d = decideAfter({ maxProbBelow: 0.8 }, probs(0.7, 0.2, 0.1), never);
    expect(d.escalate).toBe(true);
    expect(d.reason.policy).toBe('max-prob');
    expect(d.reason.value).toBeCloseTo(0.7, 6);
    expect(d.reason.threshold).toBe(0.8);
    expect(decideAfter({ maxProbBelow: 0.8 }, probs(0.85, 0.1, 0.05), never)).toMatchObject({ escalate: false, reason: { policy: 'confident' } });
  });

  it('margin escalates when the top two are close', () => {
    const d = decideAfter({ marginBelow: 0.2 }, probs(0.5, 0.4, 0.1), never);
    expect(d).toMatchObject({ escalate: true, reason: { policy: 'margin', threshold: 0.2 } });
    expect(d.reason.value).toBeCloseTo(0.1, 6);
    expect(decideAfter({ marginBelow: 0.2 }, probs(0.8, 0.1, 0.1), never).escalate).toBe(false);
  });

  it('entropy escalates above its threshold', () => {
    const d = decideAfter({ entropyAbove: 0.7 }, probs(0.7, 0.2, 0.1), never);
    expect(d).toMatchObject({ escalate: true, reason: { policy: 'entropy', threshold: 0.7 } });
    expect(d.reason.value).toBeCloseTo(0.729847, 5);
    expect(decideAfter({ entropyAbove: 0.75 }, probs(0.7, 0.2, 0.1), never).escalate).toBe(false);
  });

  it('the random audit escalates exactly the draws below its rate', () => {
    const draws = [0.01, 0.5, 0.04, 0.99];
    const random = () => draws.shift()!;
    const out = [0, 1, 2, 3].map(() => decideAfter({ auditRate: 0.05 }, probs(0.99, 0.01), random));
    expect(out.map((d) => d.escalate)).toEqual([true, false, true, false]);
    expect(out[0]!.reason).toEqual({ policy: 'audit', value: 0.01, threshold: 0.05 });
  });

  it('score rules come before the audit, so the audit never hides why a request escalated', () => {
    const d = decideAfter({ maxProbBelow: 0.9, auditRate: 1 }, probs(0.6, 0.4), () => 0);
    expect(d.reason.policy).toBe('max-prob');
  });

  it('reads the named probability output, and stays on the edge when it is missing', () => {
    const outputs: Tensor[] = [{ name: 'label', datatype: 'INT64', shape: [1], data: new BigInt64Array(1) }, ...probs(0.4, 0.6)];
    expect(decideAfter({ maxProbBelow: 0.9, output: 'probabilities' }, outputs, never).reason.policy).toBe('max-prob');
    expect(decideAfter({ maxProbBelow: 0.9, output: 'nope' }, outputs, never)).toEqual({ escalate: false, reason: { policy: 'no-score' } });
  });

  it('input-size sends large inputs to the cloud before any local run', () => {
    const big: Tensor[] = [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }];
    expect(tensorBytes(big)).toBe(3136);
    expect(decideBefore({ inputBytesAbove: 3000 }, big)).toEqual({ escalate: true, reason: { policy: 'input-size', value: 3136, threshold: 3000 } });
    expect(decideBefore({ inputBytesAbove: 4000 }, big)).toBeNull();
  });

  it('always-local and always-cloud decide before the local run, whatever the scores', () => {
    expect(decideBefore({ mode: 'always-local', maxProbBelow: 1 }, [])).toEqual({ escalate: false, reason: { policy: 'always-local' } });
    expect(decideBefore({ mode: 'always-cloud' }, [])).toEqual({ escalate: true, reason: { policy: 'always-cloud' } });
    expect(decideBefore({ maxProbBelow: 0.5 }, [])).toBeNull();
  });
});
