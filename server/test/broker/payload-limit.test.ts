import { describe, expect, it, vi } from 'vitest';
import { closedByBroker, publishOutcome, startBroker } from './harness.ts';
import { remainingLength } from './raw-mqtt.ts';

describe('broker payload limit', () => {
  it('accepts a payload of exactly the limit', async () => {
    const h = await startBroker({ maxPayloadBytes: 1024 });
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/reported', Buffer.alloc(1024, 0x61))).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages[0]?.payload).toHaveLength(1024));
  });

  it('closes the connection of a device publishing one byte over the limit, and counts it', async () => {
    const h = await startBroker({ maxPayloadBytes: 1024 });
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/reported', Buffer.alloc(1025, 0x61))).toBe('closed');
    expect(h.events.messages).toEqual([]);
    expect(h.events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MSG_TOO_LARGE' }]);
    expect(await h.metric('flotilla_broker_policy_violations_total', { code: 'FLT_MSG_TOO_LARGE' })).toBe(1);
  });

  it('closes a connection that announces an oversized packet before its body arrives', async () => {
    const h = await startBroker({ maxPayloadBytes: 1024 });
    const device = await h.device('dev-a');
    // A PUBLISH header claiming 100 MB, then only a few bytes: the broker must not wait for the rest.
    device.stream.write(Buffer.concat([Buffer.from([0x30]), remainingLength(100 * 1024 * 1024), Buffer.from([0, 1, 0x78])]));
    await closedByBroker(device);
    expect(h.events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MSG_TOO_LARGE' }]);
  });

  it('closes a connection that announces an oversized CONNECT', async () => {
    const h = await startBroker({ maxPayloadBytes: 1024 });
    const { RawConnection } = await import('./raw-mqtt.ts');
    const raw = await RawConnection.open(h.port);
    raw.send(Buffer.concat([Buffer.from([0x10]), remainingLength(50 * 1024 * 1024), Buffer.from([0, 4])]));
    await raw.whenClosed();
    expect(h.events.violations).toMatchObject([{ deviceId: null, code: 'FLT_MSG_TOO_LARGE' }]);
  });
});
