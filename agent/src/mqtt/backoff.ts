import { MAX_ENROLL_RETRY_AFTER_SEC } from '@flotilla/protocol';
import type { Random } from '../runtime/random.ts';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential growth capped at maxMs, then
 * "equal jitter": uniformly in [cap/2, cap]. The floor keeps a fleet that lost its server at the
 * same instant from hammering it at once, while the upper bound keeps the wait predictable.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: Random): number {
  const exp = policy.initialMs * Math.pow(policy.multiplier, Math.max(0, attempt));
  const cap = Math.min(policy.maxMs, Number.isFinite(exp) ? exp : policy.maxMs);
  const half = cap / 2;
  return Math.round(half + random() * half);
}

/**
 * The longest server-imposed wait the agent honours: the most a server asks a pending device for.
 * A larger or absurd value is taken as this, so a bad answer neither strands the device nor, as an
 * overflowing timer once did, makes it retry at once.
 */
export const MAX_RETRY_AFTER_SEC = MAX_ENROLL_RETRY_AFTER_SEC;

/** Server-imposed wait (Retry-After), stretched by up to 20% so pending devices do not retry in lockstep. */
export function retryAfterDelay(retryAfterSec: number, random: Random): number {
  const base = Math.min(MAX_RETRY_AFTER_SEC, Math.max(0, retryAfterSec)) * 1000;
  return Math.round(base + random() * base * 0.2);
}
