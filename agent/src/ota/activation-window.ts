/**
 * The maintenance-window part of a desired model entry (written by the rollout engine, see
 * docs/ota.md): the device may download and verify at once, and switch only inside
 * [activateAfter, activateBefore).
 */
export interface ActivationWindow {
  activateAfter?: number;
  activateBefore?: number;
}

export type ActivationDecision = { kind: 'now' } | { kind: 'wait'; ms: number; at: number } | { kind: 'missed'; before: number };

export function activationWindowOf(entry: Record<string, unknown>): ActivationWindow {
  const w: ActivationWindow = {};
  if (typeof entry.activateAfter === 'number' && Number.isFinite(entry.activateAfter)) w.activateAfter = entry.activateAfter;
  if (typeof entry.activateBefore === 'number' && Number.isFinite(entry.activateBefore)) w.activateBefore = entry.activateBefore;
  return w;
}

export function decideActivation(w: ActivationWindow, now: number): ActivationDecision {
  if (w.activateBefore !== undefined && now >= w.activateBefore) return { kind: 'missed', before: w.activateBefore };
  if (w.activateAfter !== undefined && now < w.activateAfter) return { kind: 'wait', ms: w.activateAfter - now, at: w.activateAfter };
  return { kind: 'now' };
}
