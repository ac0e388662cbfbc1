import { describe, expect, it } from 'vitest';
import { backoffDelay, retryAfterDelay } from '../src/mqtt/backoff.ts';

const policy = { initialMs: 1000, maxMs: 30_000, multiplier: 2 };

describe('reconnect backoff', () => {
  it('stays within [cap/2, cap] for every attempt, whatever the random draw', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(attempt, policy, () => r);
        expect(d).toBeGreaterThanOrEqual(cap / 2);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('grows exponentially and stops growing at maxMs', () => {
    const lows = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, policy, () => 0));
    expect(lows).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect(backoffDelay(1000, policy, () => 0.999999)).toBeLessThanOrEqual(30_000);
  });

  it('spreads devices out: different draws give different delays', () => {
    const draws = new Set([0.1, 0.4, 0.7, 0.9].map((r) => backoffDelay(3, policy, () => r)));
    expect(draws.size).toBe(4);
  });

  it('never retries before a server Retry-After and at most 20% after it', () => {
    expect(retryAfterDelay(10, () => 0)).toBe(10_000);
    expect(retryAfterDelay(10, () => 0.999999)).toBeLessThanOrEqual(12_000);
    expect(retryAfterDelay(0, () => 0.5)).toBe(0);
  });
});
