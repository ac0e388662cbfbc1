import { deviceTopic } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { startGuardedBroker } from './attack-harness.ts';

const DEVICES = { 'dev-slow': 'secret-s', 'dev-ok': 'secret-o' };
const LIMIT = 1024 * 1024;
const PAYLOAD = Buffer.alloc(200 * 1024, 0x61);
/** 64 MiB at most: far past any loopback socket buffer, so an unguarded broker would queue the rest. */
const MAX_PUBLISHES = 320;

describe('slow subscriber', () => {
  it('disconnects a device that stops reading once its outgoing buffer passes the limit, and keeps serving the others', async () => {
    const h = await startGuardedBroker(DEVICES, { maxOutgoingBufferBytes: LIMIT });
    const slow = await h.device('127.0.2.1', 'dev-slow');
    const ok = await h.device('127.0.2.2', 'dev-ok');
    await slow.subscribeAsync(deviceTopic('dev-slow', 'desired'), { qos: 1 });
    await ok.subscribeAsync(deviceTopic('dev-ok', 'desired'), { qos: 1 });
    let okReceived = 0;
    ok.on('message', () => okReceived++);
    let slowClosed = false;
    slow.on('close', () => (slowClosed = true));
    // The attacker stops reading its socket: the kernel buffers fill, then the server's would.
    (slow.stream as unknown as { pause(): void }).pause();

    // aedes answers a publish to a client whose socket is full only once it drains (or closes), so
    // the slow device's publishes are not awaited; the healthy device's are.
    const toSlow: Promise<unknown>[] = [];
    let published = 0;
    while (published < MAX_PUBLISHES && (await h.metric('flotilla_broker_connections_shed_total', { reason: 'slow_consumer' })) === 0) {
      toSlow.push(h.broker.publish(deviceTopic('dev-slow', 'desired'), PAYLOAD, { qos: 1, retain: false }).catch(() => {}));
      await h.broker.publish(deviceTopic('dev-ok', 'desired'), Buffer.from(`{"n":${published}}`), { qos: 1, retain: false });
      published++;
    }
    // Once the device is dropped, no publish to it is left hanging.
    await Promise.all(toSlow);
    expect(await h.metric('flotilla_broker_connections_shed_total', { reason: 'slow_consumer' })).toBe(1);
    expect(published).toBeLessThan(MAX_PUBLISHES);
    expect(h.events.violations.map((v) => [v.deviceId, v.code])).toEqual([['dev-slow', 'FLT_MQTT_SLOW_CONSUMER']]);
    // The healthy device got every message published to it, in the same run.
    await new Promise<void>((resolve) => (okReceived >= published ? resolve() : ok.on('message', () => okReceived >= published && resolve())));
    expect(okReceived).toBe(published);
    await new Promise<void>((resolve) => {
      (slow.stream as unknown as { resume(): void }).resume();
      if (slowClosed) resolve();
      else slow.once('close', () => resolve());
    });
    expect(h.broker.isConnected('dev-slow')).toBe(false);
    expect(h.broker.isConnected('dev-ok')).toBe(true);
  });
});
