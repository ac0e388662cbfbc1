import type { AnsweredBy, EscalationPolicy, EscalationReason } from '@flotilla/protocol';
import type { Tensor } from '../inference/types.ts';
import { confidence } from './confidence.ts';

export type { AnsweredBy, EscalationPolicy, EscalationReason };

/** A policy's verdict on one request. */
export interface Decision {
  escalate: boolean;
  reason: EscalationReason;
}

/** Uniform numbers in [0, 1): the audit draw. Injected so tests pin it. */
export type Random = () => number;

export const DEFAULT_BUDGET_MS = 200;

/** Raw bytes of a request's tensors (BYTES: their UTF-8 lengths), what the input-size rule measures. */
export function tensorBytes(tensors: readonly Tensor[]): number {
  let n = 0;
  for (const t of tensors) {
    if (Array.isArray(t.data)) for (const s of t.data) n += Buffer.byteLength(s);
    else n += (t.data as ArrayBufferView).byteLength;
  }
  return n;
}

/**
 * Rules that need no local result: the mode and the input size. A decision here means the edge
 * model is not consulted first (`always-cloud`, or an input too large for the edge); `null` means
 * run locally and ask `decideAfter`.
 */
export function decideBefore(policy: EscalationPolicy, inputs: readonly Tensor[]): Decision | null {
  if (policy.mode === 'always-local') return { escalate: false, reason: { policy: 'always-local' } };
  if (policy.mode === 'always-cloud') return { escalate: true, reason: { policy: 'always-cloud' } };
  if (policy.inputBytesAbove !== undefined) {
    const bytes = tensorBytes(inputs);
    if (bytes > policy.inputBytesAbove) return { escalate: true, reason: { policy: 'input-size', value: bytes, threshold: policy.inputBytesAbove } };
  }
  return null;
}

/** The probability vector the score rules read: the first row of the policy's output. */
export function scoreVector(policy: EscalationPolicy, outputs: readonly Tensor[]): Float32Array | Float64Array | null {
  const t = policy.output === undefined ? outputs[0] : outputs.find((o) => o.name === policy.output);
  if (!t || !(t.data instanceof Float32Array || t.data instanceof Float64Array)) return null;
  const k = t.shape[t.shape.length - 1] ?? t.data.length;
  if (k <= 0 || k > t.data.length) return null;
  return t.data.subarray(0, k);
}

/**
 * Score rules on the local result, in a fixed order (max-prob, margin, entropy), then the random
 * audit. The first rule that fires names the reason. When none fires the reason is `confident`
 * (with the max probability when scored), so every answer says why it stayed on the edge.
 */
export function decideAfter(policy: EscalationPolicy, outputs: readonly Tensor[], random: Random): Decision {
  const hasScoreRule = policy.maxProbBelow !== undefined || policy.marginBelow !== undefined || policy.entropyAbove !== undefined;
  let maxProb: number | undefined;
  if (hasScoreRule) {
    const probs = scoreVector(policy, outputs);
    if (probs) {
      const c = confidence(probs);
      maxProb = c.maxProb;
      if (policy.maxProbBelow !== undefined && c.maxProb < policy.maxProbBelow) {
        return { escalate: true, reason: { policy: 'max-prob', value: c.maxProb, threshold: policy.maxProbBelow } };
      }
      if (policy.marginBelow !== undefined && c.margin < policy.marginBelow) {
        return { escalate: true, reason: { policy: 'margin', value: c.margin, threshold: policy.marginBelow } };
      }
      if (policy.entropyAbove !== undefined && c.entropy > policy.entropyAbove) {
        return { escalate: true, reason: { policy: 'entropy', value: c.entropy, threshold: policy.entropyAbove } };
      }
    } else if (policy.auditRate === undefined) {
      return { escalate: false, reason: { policy: 'no-score' } };
    }
  }
  if (policy.auditRate !== undefined && policy.auditRate > 0) {
    const draw = random();
    if (draw < policy.auditRate) return { escalate: true, reason: { policy: 'audit', value: draw, threshold: policy.auditRate } };
  }
  return { escalate: false, reason: maxProb === undefined ? { policy: 'confident' } : { policy: 'confident', value: maxProb } };
}
