import { describe, expect, it, vi } from 'vitest';
import { closedByBroker, publishOutcome, startBroker } from './harness.ts';
import { RawConnection, connectPacket, publishQos2Packet } from './raw-mqtt.ts';

const CONNACK_OK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const pubrec = (id: number) => Buffer.from([0x50, 0x02, id >> 8, id & 0xff]);

describe('broker client id takeover', () => {
  it('refuses a device that claims another device client id with its own credential, and the victim stays connected', async () => {
    const h = await startBroker();
    const victim = await h.device('dev-b');
    let victimDropped = false;
    victim.on('close', () => (victimDropped = true));

    const { code, client: attacker } = await h.attempt({ clientId: 'dev-b', username: 'dev-a', password: 'secret-a' });
    expect(code).toBe(2);
    await closedByBroker(attacker);
    expect(h.events.violations).toMatchObject([{ deviceId: 'dev-b', code: 'FLT_MQTT_CLIENT_ID_TAKEN' }]);

    expect(await publishOutcome(victim, 'flt/v1/d/dev-b/heartbeat', 'still here')).toBe('acked');
    expect(victimDropped).toBe(false);
    expect(h.broker.isConnected('dev-b')).toBe(true);
    expect(h.events.log).toEqual(['connected dev-b']);
  });

  it('refuses a connect under the victim id with a guessed password, and the victim stays connected', async () => {
    const h = await startBroker();
    const victim = await h.device('dev-b');
    const { code, client: attacker } = await h.attempt({ clientId: 'dev-b', username: 'dev-b', password: 'guess' });
    expect(code).toBe(4);
    await closedByBroker(attacker);
    expect(await publishOutcome(victim, 'flt/v1/d/dev-b/heartbeat', 'still here')).toBe('acked');
    expect(h.events.log).toEqual(['connected dev-b']);
  });

  it('keeps the victim QoS 2 duplicate detection intact after a failed takeover', async () => {
    const h = await startBroker();
    const victim = await RawConnection.open(h.port);
    victim.send(connectPacket('dev-b', 'dev-b', 'secret-b'));
    await vi.waitFor(() => expect(victim.received.subarray(0, 4)).toEqual(CONNACK_OK));

    // QoS 2 publish whose PUBREL the device has not sent yet: the broker keeps its id to drop a resend.
    victim.send(publishQos2Packet('flt/v1/d/dev-b/events', 7, 'event-7', false));
    await vi.waitFor(() => expect(victim.received.subarray(4, 8)).toEqual(pubrec(7)));
    await vi.waitFor(() => expect(h.events.messages).toHaveLength(1));

    const { code, client: attacker } = await h.attempt({ clientId: 'dev-b', username: 'dev-b', password: 'guess', clean: true });
    expect(code).toBe(4);
    await closedByBroker(attacker);

    victim.send(publishQos2Packet('flt/v1/d/dev-b/events', 7, 'event-7', true));
    await vi.waitFor(() => expect(victim.received.subarray(8, 12)).toEqual(pubrec(7)));
    expect(h.events.messages.map((m) => m.payload)).toEqual(['event-7']);
    expect(victim.closed).toBe(false);
  });

  it('lets a device reconnecting with its own credential replace its stale session without publishing the stale will', async () => {
    const h = await startBroker();
    const will = { topic: 'flt/v1/d/dev-a/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const stale = await h.device('dev-a', { will });
    const fresh = await h.device('dev-a', { will });
    await closedByBroker(stale);

    expect(await publishOutcome(fresh, 'flt/v1/d/dev-a/status', 'online', true)).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages.map((m) => m.payload)).toEqual(['online']));
    expect(h.events.log).toEqual(['connected dev-a', 'disconnected dev-a', 'connected dev-a']);
    expect(h.broker.isConnected('dev-a')).toBe(true);
    expect(h.broker.connectedCount()).toBe(1);
  });
});
