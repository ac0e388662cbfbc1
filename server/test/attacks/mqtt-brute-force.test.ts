import { describe, expect, it } from 'vitest';
import { startGuardedBroker, testThrottle } from './attack-harness.ts';

const DEVICES = { 'dev-a': 'secret-a', 'dev-b': 'secret-b' };

describe('MQTT CONNECT brute force', () => {
  it('refuses further CONNECTs from an address past the failure limit, even with the right credential', async () => {
    let t = 0;
    const throttle = testThrottle(() => t, { perAddress: 5 });
    const h = await startGuardedBroker(DEVICES, { throttle });
    const codes: Array<number | 'closed'> = [];
    for (let i = 0; i < 5; i++) codes.push((await h.attempt('127.0.0.2', { clientId: 'dev-a', username: 'dev-a', password: `guess-${i}` })).code);
    expect(codes).toEqual([4, 4, 4, 4, 4]);
    // Blocked now: refused before the credential is even looked at.
    expect((await h.attempt('127.0.0.2', { clientId: 'dev-a', username: 'dev-a', password: 'secret-a' })).code).toBe(5);
    expect(await h.metric('flotilla_broker_connects_total', { result: 'throttled' })).toBe(1);
    expect(await h.metric('flotilla_broker_policy_violations_total', { code: 'FLT_AUTH_THROTTLED' })).toBe(1);
    // After the block the address may try again.
    t += 30_000;
    expect((await h.attempt('127.0.0.2', { clientId: 'dev-a', username: 'dev-a', password: 'secret-a' })).code).toBe(0);
  });

  it('lets the real device connect from its own address while an attacker guesses its credential elsewhere', async () => {
    const throttle = testThrottle(() => 0, { perAddress: 3, perIdentity: 3 });
    const h = await startGuardedBroker(DEVICES, { throttle });
    for (let i = 0; i < 6; i++) await h.attempt('127.0.0.3', { clientId: 'dev-a', username: 'dev-a', password: `guess-${i}` });
    expect((await h.attempt('127.0.0.3', { clientId: 'dev-a', username: 'dev-a', password: 'secret-a' })).code).toBe(5);
    const real = await h.device('127.0.0.4', 'dev-a');
    expect(real.connected).toBe(true);
  });

  it('counts anonymous CONNECTs as failures too', async () => {
    const throttle = testThrottle(() => 0, { perAddress: 2 });
    const h = await startGuardedBroker(DEVICES, { throttle });
    await h.attempt('127.0.0.5', { clientId: 'dev-b' });
    await h.attempt('127.0.0.5', { clientId: 'dev-b' });
    expect((await h.attempt('127.0.0.5', { clientId: 'dev-b', username: 'dev-b', password: 'secret-b' })).code).toBe(5);
  });
});
