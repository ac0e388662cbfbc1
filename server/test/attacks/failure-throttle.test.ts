import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../src/auth/failure-throttle.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function throttle(now: () => number, extra: Partial<ConstructorParameters<typeof FailureThrottle>[0]> = {}) {
  return new FailureThrottle({ windowMs: 60_000, perAddress: 3, perIdentity: 10, blockMs: 10_000, maxBlockMs: 40_000, maxEntries: 100, now, ...extra });
}

describe('failed-authentication throttle', () => {
  it('blocks an address once it reaches the failure limit within the window', () => {
    const c = clock();
    const t = throttle(c.now);
    t.failed('10.0.0.1');
    t.failed('10.0.0.1');
    expect(t.check('10.0.0.1').allowed).toBe(true);
    t.failed('10.0.0.1');
    expect(t.check('10.0.0.1')).toEqual({ allowed: false, reason: 'address', retryAfterMs: 10_000 });
  });

  it('forgets failures older than the window', () => {
    const c = clock();
    const t = throttle(c.now);
    t.failed('10.0.0.1');
    t.failed('10.0.0.1');
    c.advance(60_000);
    t.failed('10.0.0.1');
    expect(t.check('10.0.0.1').allowed).toBe(true);
  });

  it('doubles the block each time the address comes back and fails again, up to the maximum', () => {
    const c = clock();
    const t = throttle(c.now);
    const blocks: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3; i++) t.failed('10.0.0.1');
      const verdict = t.check('10.0.0.1');
      if (verdict.allowed) throw new Error('expected a block');
      blocks.push(verdict.retryAfterMs);
      c.advance(verdict.retryAfterMs);
      expect(t.check('10.0.0.1').allowed).toBe(true);
    }
    expect(blocks).toEqual([10_000, 20_000, 40_000, 40_000]);
  });

  it('does not block another address because of an attacker', () => {
    const c = clock();
    const t = throttle(c.now);
    for (let i = 0; i < 50; i++) t.failed('10.0.0.1', 'device:dev-a');
    expect(t.check('10.0.0.1', 'device:dev-a').allowed).toBe(false);
    expect(t.check('10.0.0.2', 'device:dev-a').allowed).toBe(true);
  });

  it('holds back every address that failed on an identity under a distributed attack, but not a clean one', () => {
    const c = clock();
    const t = throttle(c.now, { perAddress: 1_000 });
    for (let i = 0; i < 10; i++) t.failed(`10.0.1.${i}`, 'device:dev-a');
    expect(t.check('10.0.1.3', 'device:dev-a')).toMatchObject({ allowed: false, reason: 'identity' });
    expect(t.check('10.0.1.3', 'device:dev-b').allowed).toBe(true);
    expect(t.check('10.0.9.9', 'device:dev-a').allowed).toBe(true);
  });

  it('never counts nor refuses an exempt address, IPv4-mapped or not', () => {
    const c = clock();
    const t = throttle(c.now, { exemptAddresses: ['127.0.0.1'] });
    for (let i = 0; i < 10; i++) t.failed('::ffff:127.0.0.1');
    expect(t.check('127.0.0.1').allowed).toBe(true);
    expect(t.size.addresses).toBe(0);
  });

  it('tracks at most maxEntries addresses, however many attack', () => {
    const c = clock();
    const t = throttle(c.now, { maxEntries: 100 });
    for (let i = 0; i < 5_000; i++) t.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `device:d${i}`);
    expect(t.size).toEqual({ addresses: 100, identities: 100 });
  });

  it('forgets an address once its failures and block have aged out', () => {
    const c = clock();
    const t = throttle(c.now);
    for (let i = 0; i < 3; i++) t.failed('10.0.0.1');
    c.advance(60_000 + 40_000);
    expect(t.check('10.0.0.1').allowed).toBe(true);
    expect(t.size.addresses).toBe(0);
  });
});
