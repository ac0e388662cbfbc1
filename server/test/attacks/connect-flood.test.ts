import { describe, expect, it } from 'vitest';
import { closed, startGuardedBroker } from './attack-harness.ts';

const DEVICES = { 'dev-a': 'secret-a' };

describe('MQTT connect flood', () => {
  it('closes connections past the pending limit from one address at once and counts them', async () => {
    const h = await startGuardedBroker(DEVICES, { connects: { perSecond: 1_000, pending: 4 }, now: () => 0 });
    // Sockets that never send CONNECT: each one parks a descriptor and parser until the connect timeout.
    const sockets = [];
    for (let i = 0; i < 10; i++) sockets.push(await h.socket('127.0.1.1'));
    await Promise.all(sockets.slice(4).map(closed));
    expect(sockets.slice(0, 4).every((s) => !s.destroyed)).toBe(true);
    expect(await h.metric('flotilla_broker_connections_shed_total', { reason: 'flood' })).toBe(6);
  });

  it('closes connections past the per-second rate from one address, and admits them again the next second', async () => {
    let t = 5_000;
    const h = await startGuardedBroker(DEVICES, { connects: { perSecond: 3, pending: 100 }, now: () => t });
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await h.socket('127.0.1.2'));
    await Promise.all(first.slice(3).map(closed));
    expect(await h.metric('flotilla_broker_connections_shed_total', { reason: 'flood' })).toBe(2);
    t += 1_000;
    const dev = await h.device('127.0.1.2', 'dev-a');
    expect(dev.connected).toBe(true);
  });

  it('keeps accepting a device from another address while one address floods', async () => {
    const h = await startGuardedBroker(DEVICES, { connects: { perSecond: 5, pending: 5 }, now: () => 0 });
    const flood = [];
    for (let i = 0; i < 20; i++) flood.push(await h.socket('127.0.1.3'));
    const dev = await h.device('127.0.1.4', 'dev-a');
    expect(dev.connected).toBe(true);
    expect(await h.metric('flotilla_broker_connections_shed_total', { reason: 'flood' })).toBe(15);
  });

  it('frees a pending slot once a connection is answered, so a device reconnecting in turn is never shed', async () => {
    const h = await startGuardedBroker(DEVICES, { connects: { perSecond: 1_000, pending: 1 }, now: () => 0 });
    for (let i = 0; i < 5; i++) {
      const dev = await h.device('127.0.1.5', 'dev-a');
      await dev.endAsync();
    }
    expect(await h.metric('flotilla_broker_connections_shed_total', { reason: 'flood' })).toBe(0);
  });
});
