import { deviceTopic } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { publishOutcome } from '../broker/harness.ts';
import { startGuardedBroker } from './attack-harness.ts';

const DEVICES = { 'dev-r': 'secret-r' };

describe('retained-message abuse', () => {
  it('keeps one retained status per device however many times it is republished', async () => {
    const h = await startGuardedBroker(DEVICES, {});
    const dev = await h.device('127.0.3.1', 'dev-r');
    const before = h.broker.retainedCount();
    for (let i = 0; i < 500; i++) {
      await dev.publishAsync(deviceTopic('dev-r', 'status'), Buffer.from(JSON.stringify({ state: 'online', n: i })), { qos: 1, retain: true });
    }
    expect(h.broker.retainedCount()).toBe(before + 1);
  });

  it('refuses a retained publish anywhere but the status topic, and stores nothing', async () => {
    const h = await startGuardedBroker(DEVICES, {});
    for (const topic of [deviceTopic('dev-r', 'events'), deviceTopic('dev-r', 'reported'), `${deviceTopic('dev-r', 'status')}/extra`, `${deviceTopic('dev-r', 'status')}-1`]) {
      const dev = await h.device('127.0.3.2', 'dev-r');
      expect(await publishOutcome(dev, topic, '{"x":1}', true)).toBe('closed');
    }
    expect(h.broker.retainedCount()).toBe(0);
  });

  it('refuses an oversize retained status and keeps the store empty', async () => {
    const h = await startGuardedBroker(DEVICES, {});
    const dev = await h.device('127.0.3.3', 'dev-r');
    expect(await publishOutcome(dev, deviceTopic('dev-r', 'status'), Buffer.alloc(300 * 1024, 0x20), true)).toBe('closed');
    expect(h.broker.retainedCount()).toBe(0);
  });
});
