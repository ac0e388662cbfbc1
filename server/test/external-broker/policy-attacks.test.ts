/**
 * The broker-policy attacks of server/test/broker/*-policy.test.ts, run against mosquitto with the
 * dynamic-security ACLs Flotilla provisions. Where mosquitto answers differently from the embedded
 * broker (CONNACK 5 for every refusal, a forbidden publish dropped instead of the connection
 * closed, a foreign will dropped instead of refused) the test states the mosquitto outcome and the
 * property that holds in both: nothing crosses from one device to another. docs/external-broker.md.
 */
import { UP_CHANNELS } from '@flotilla/protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { closedByBroker, publishOutcome, roundTrip, subackCode, subackCodes } from '../broker/harness.ts';
import { SECRETS, startExternal, statusPayload } from './harness.ts';
import type { ExternalHarness } from './harness.ts';

const MOSQUITTO_NOT_AUTHORIZED = 5;

let h: ExternalHarness;
const teardown: Array<() => Promise<void>> = [];
beforeAll(async () => {
  h = await startExternal(['dev-a', 'dev-b', 'dev-ab'], (fn) => teardown.unshift(fn));
});
afterAll(async () => {
  for (const fn of teardown) await fn();
});
beforeEach(() => {
  h.events.messages.length = 0;
  h.events.violations.length = 0;
  h.events.log.length = 0;
});

/** Publishes a heartbeat and waits for the server to get it: everything the device sent before has been routed. */
async function fence(client: Awaited<ReturnType<ExternalHarness['device']>>, deviceId: string): Promise<void> {
  const marker = `fence-${Math.random()}`;
  expect(await publishOutcome(client, `flt/v1/d/${deviceId}/heartbeat`, marker)).toBe('acked');
  await vi.waitFor(() => expect(h.events.messages.map((m) => m.payload)).toContain(marker));
}

describe('mosquitto with Flotilla dynsec ACLs: connect policy', () => {
  it.each([
    ['an anonymous connect', { clientId: 'dev-a' }],
    ['a wrong password', { clientId: 'dev-a', username: 'dev-a', password: 'guess' }],
    ['an unknown device', { clientId: 'dev-zz', username: 'dev-zz', password: 'anything' }],
    ['a device that forgets the password', { clientId: 'dev-a', username: 'dev-a' }],
    ['a client id that differs from the username, with a valid credential', { clientId: 'dev-b', username: 'dev-a', password: SECRETS['dev-a'] }],
    ['the server account under a device client id with a guessed password', { clientId: 'dev-a', username: 'flotilla-admin', password: 'guess' }],
  ])('refuses %s with CONNACK not-authorized', async (_what, options) => {
    const { code } = await h.attempt(options);
    expect(code).toBe(MOSQUITTO_NOT_AUTHORIZED);
  });

  it.each(['dev+a', 'dev#a', 'dev/a', '$dev-a', '+', '#', 'd'.repeat(65)])('refuses the client id %j even with a valid device credential', async (id) => {
    const { code } = await h.attempt({ clientId: id, username: 'dev-a', password: SECRETS['dev-a'] });
    expect(code).toBe(MOSQUITTO_NOT_AUTHORIZED);
  });

  it.each([
    ['another device status', 'flt/v1/d/dev-b/status'],
    ['another device events', 'flt/v1/d/dev-b/events'],
    ['its own down channel', 'flt/v1/d/dev-a/desired'],
    ['$SYS', '$SYS/broker/new/clients'],
    ['a topic outside the scheme', 'alerts'],
  ])('never delivers a last will aimed at %s', async (_what, topic) => {
    const victim = await h.device('dev-b');
    const seen: string[] = [];
    victim.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));
    expect(await subackCode(victim, 'flt/v1/d/dev-b/#')).toBe(1);
    const attacker = await h.device('dev-a', { will: { topic, payload: Buffer.from('forged-will'), qos: 1, retain: false } });
    attacker.stream.destroy();
    // A later session of the same device with a will on its own status: once that will is in, the
    // first session's will has been handled too (mosquitto ends a session before its successor).
    const control = await h.device('dev-a', { will: { topic: 'flt/v1/d/dev-a/status', payload: statusPayload('offline'), qos: 1, retain: false } });
    control.stream.destroy();
    await vi.waitFor(() => expect(h.events.messages.filter((m) => m.deviceId === 'dev-a' && m.channel === 'status')).toHaveLength(1));
    await roundTrip(victim);
    expect(seen).toEqual([]);
    expect(h.events.messages.map((m) => m.payload)).not.toContain('forged-will');
  });
});

describe('mosquitto with Flotilla dynsec ACLs: client id takeover', () => {
  it('refuses a device that claims another device client id with its own credential, and the victim stays connected', async () => {
    const victim = await h.device('dev-b');
    let victimDropped = false;
    victim.on('close', () => (victimDropped = true));
    const { code, client: attacker } = await h.attempt({ clientId: 'dev-b', username: 'dev-a', password: SECRETS['dev-a'] });
    expect(code).toBe(MOSQUITTO_NOT_AUTHORIZED);
    await closedByBroker(attacker);
    await fence(victim, 'dev-b');
    expect(victimDropped).toBe(false);
  });

  it('refuses a connect under the victim id with a guessed password, and the victim stays connected', async () => {
    const victim = await h.device('dev-b');
    const { code, client: attacker } = await h.attempt({ clientId: 'dev-b', username: 'dev-b', password: 'guess' });
    expect(code).toBe(MOSQUITTO_NOT_AUTHORIZED);
    await closedByBroker(attacker);
    await fence(victim, 'dev-b');
    expect(victim.connected).toBe(true);
  });
});

describe('mosquitto with Flotilla dynsec ACLs: publish policy', () => {
  it.each(UP_CHANNELS)('delivers a publish on the device own %s channel to the server', async (channel) => {
    const device = await h.device('dev-a');
    const payload = channel === 'status' ? statusPayload('online') : Buffer.from(`{"on":"${channel}"}`);
    expect(await publishOutcome(device, `flt/v1/d/dev-a/${channel}`, payload)).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages).toMatchObject([{ deviceId: 'dev-a', channel, payload: payload.toString(), retain: false }]));
  });

  it('accepts a retained publish on the device own status topic and the server sees it retained', async () => {
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/status', statusPayload('online'), true)).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages).toMatchObject([{ channel: 'status', retain: true }]));
    expect(h.broker.isConnected('dev-a')).toBe(true);
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/status', statusPayload('offline'), true)).toBe('acked');
    await vi.waitFor(() => expect(h.broker.isConnected('dev-a')).toBe(false));
    await publishOutcome(device, 'flt/v1/d/dev-a/status', Buffer.alloc(0), true);
  });

  it.each([
    ['another device up channel', 'flt/v1/d/dev-b/status'],
    ['another device events', 'flt/v1/d/dev-b/events'],
    ['another device desired state', 'flt/v1/d/dev-b/desired'],
    ['its own desired state', 'flt/v1/d/dev-a/desired'],
    ['its own ack channel', 'flt/v1/d/dev-a/ack'],
    ['its own command channel', 'flt/v1/d/dev-a/cmd'],
    ['an unknown channel under its prefix', 'flt/v1/d/dev-a/shell'],
    ['a deeper topic under its prefix', 'flt/v1/d/dev-a/status/x'],
    ['its bare prefix', 'flt/v1/d/dev-a'],
    ['$SYS', '$SYS/x/heartbeat'],
    ['the dynamic-security control topic', '$CONTROL/dynamic-security/v1'],
    ['a topic outside the scheme', 'factory/line-1/alarm'],
    ['another protocol version', 'flt/v2/d/dev-a/status'],
  ])('drops a device publish to %s before it reaches the server or any device', async (_what, topic) => {
    const victim = await h.device('dev-b');
    const seen: string[] = [];
    victim.on('message', (t) => seen.push(t));
    expect(await subackCode(victim, 'flt/v1/d/dev-b/#')).toBe(1);
    const device = await h.device('dev-a');
    const body = topic.startsWith('$CONTROL') ? JSON.stringify({ commands: [{ command: 'deleteClient', username: 'dev-b' }] }) : 'x';
    // MQTT 3.1.1 has no way to say "refused" in a PUBACK: mosquitto acknowledges and drops.
    expect(await publishOutcome(device, topic, body)).toBe('acked');
    await fence(device, 'dev-a');
    await roundTrip(victim);
    expect(seen).toEqual([]);
    expect(h.events.messages.map((m) => m.payload)).not.toContain('x');
    // dev-b's account survived the attempt on the control topic.
    expect(await h.device('dev-b')).toBeTruthy();
  });

  it.each(['heartbeat', 'reported', 'events', 'inventory'])(
    'refuses a message retained on the device %s channel: not ingested, cleared from the broker, device disconnected',
    async (channel) => {
      const device = await h.device('dev-a');
      const topic = `flt/v1/d/dev-a/${channel}`;
      await publishOutcome(device, topic, 'sticky', true);
      await closedByBroker(device);
      expect(h.events.messages).toEqual([]);
      expect(h.events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
      // A fresh session of the device finds nothing retained there.
      const again = await h.device('dev-a');
      const seen: string[] = [];
      again.on('message', (_t, p) => seen.push(p.toString()));
      await vi.waitFor(async () => {
        expect(await subackCode(again, topic)).toBe(1);
        await roundTrip(again);
        expect(seen).toEqual([]);
      });
    },
  );
});

describe('mosquitto with Flotilla dynsec ACLs: subscribe policy', () => {
  it.each(['flt/v1/d/dev-a/desired', 'flt/v1/d/dev-a/ack', 'flt/v1/d/dev-a/cmd', 'flt/v1/d/dev-a/+', 'flt/v1/d/dev-a/#'])(
    'grants a device the subscription %j under its own prefix',
    async (filter) => {
      const device = await h.device('dev-a');
      expect(await subackCode(device, filter)).toBe(1);
    },
  );

  it.each([
    '#',
    '+',
    '+/#',
    '+/+/+/+/+',
    'flt/#',
    'flt/v1/#',
    'flt/v1/d/#',
    'flt/v1/d/+/desired',
    'flt/v1/d/+/#',
    'flt/v1/d/dev-b/desired',
    'flt/v1/d/dev-b/#',
    'flt/v1/d/dev-ab/#',
    '$SYS/#',
    '$SYS/+/new/clients',
    '$CONTROL/dynamic-security/#',
  ])('answers SUBACK 128 to a device subscribing to %j and keeps it connected', async (filter) => {
    const device = await h.device('dev-a');
    expect(await subackCode(device, filter)).toBe(128);
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/heartbeat', 'still connected')).toBe('acked');
  });

  it('grants the allowed filters and refuses the others within one SUBSCRIBE', async () => {
    const device = await h.device('dev-a');
    expect(await subackCodes(device, ['flt/v1/d/dev-a/desired', 'flt/v1/d/dev-b/desired'])).toEqual([1, 128]);
  });

  it('delivers the server desired state to its device and never to another device', async () => {
    const a = await h.device('dev-a');
    const b = await h.device('dev-b');
    const got: string[] = [];
    a.on('message', (topic, payload) => got.push(`a ${topic} ${payload.toString()}`));
    b.on('message', (topic, payload) => got.push(`b ${topic} ${payload.toString()}`));
    expect(await subackCode(a, 'flt/v1/d/dev-a/#')).toBe(1);
    expect(await subackCode(b, 'flt/v1/d/+/desired')).toBe(128);
    await h.broker.publish('flt/v1/d/dev-a/desired', Buffer.from('gen-1'), { qos: 1, retain: false });
    await vi.waitFor(() => expect(got).toEqual(['a flt/v1/d/dev-a/desired gen-1']));
  });

  it('delivers a retained server message to a device that subscribes later', async () => {
    await h.broker.publish('flt/v1/d/dev-a/desired', Buffer.from('gen-2'), { qos: 1, retain: true });
    const a = await h.device('dev-a');
    const got: string[] = [];
    a.on('message', (topic, payload, packet) => got.push(`${topic} ${payload.toString()} retain=${packet.retain}`));
    expect(await subackCode(a, 'flt/v1/d/dev-a/desired')).toBe(1);
    await vi.waitFor(() => expect(got).toEqual(['flt/v1/d/dev-a/desired gen-2 retain=true']));
    await h.broker.publish('flt/v1/d/dev-a/desired', Buffer.alloc(0), { qos: 1, retain: true });
  });
});

describe('mosquitto with Flotilla dynsec ACLs: revocation', () => {
  it('disconnects a revoked device at once and refuses its credential afterwards', async () => {
    const device = await h.device('dev-ab');
    h.active.delete('dev-ab');
    h.broker.kick('dev-ab');
    await closedByBroker(device);
    const { code } = await h.attempt({ clientId: 'dev-ab', username: 'dev-ab', password: SECRETS['dev-ab'] });
    expect(code).toBe(MOSQUITTO_NOT_AUTHORIZED);
  });
});
