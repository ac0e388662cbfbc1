import { describe, expect, it, vi } from 'vitest';
import { startBroker } from './harness.ts';

describe('broker connect policy', () => {
  it('accepts a device with its own credential and reports it connected, then disconnected', async () => {
    const h = await startBroker();
    const client = await h.device('dev-a');
    await vi.waitFor(() => expect(h.broker.isConnected('dev-a')).toBe(true));
    expect(h.events.log).toEqual(['connected dev-a']);
    expect(await h.metric('flotilla_broker_connects_total', { result: 'accepted' })).toBe(1);
    expect(await h.metric('flotilla_broker_connected_clients')).toBe(1);

    await client.endAsync();
    await vi.waitFor(() => expect(h.events.log).toEqual(['connected dev-a', 'disconnected dev-a']));
    expect(h.broker.isConnected('dev-a')).toBe(false);
    expect(h.broker.connectedCount()).toBe(0);
  });

  it('refuses an anonymous connect with CONNACK not-authorized', async () => {
    const h = await startBroker();
    const { code } = await h.attempt({ clientId: 'dev-a' });
    expect(code).toBe(5);
    expect(h.broker.isConnected('dev-a')).toBe(false);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MQTT_AUTH_FAILED', detail: 'anonymous connect' }]);
    expect(await h.metric('flotilla_broker_connects_total', { result: 'refused' })).toBe(1);
  });

  it('refuses a wrong password with CONNACK bad-credentials', async () => {
    const h = await startBroker();
    const { code } = await h.attempt({ clientId: 'dev-a', username: 'dev-a', password: 'guess' });
    expect(code).toBe(4);
    expect(h.events.log).toEqual([]);
    expect(await h.metric('flotilla_broker_policy_violations_total', { code: 'FLT_MQTT_AUTH_FAILED' })).toBe(1);
  });

  it('refuses an unknown device with CONNACK bad-credentials', async () => {
    const h = await startBroker();
    const { code } = await h.attempt({ clientId: 'dev-zz', username: 'dev-zz', password: 'anything' });
    expect(code).toBe(4);
  });

  it('refuses a device that forgets the password with CONNACK bad-credentials', async () => {
    const h = await startBroker({ devices: { 'dev-a': '' } });
    const { code } = await h.attempt({ clientId: 'dev-a', username: 'dev-a' });
    expect(code).toBe(4);
  });

  it('refuses a client id that differs from the username, even with a valid credential', async () => {
    const h = await startBroker();
    const { code } = await h.attempt({ clientId: 'dev-b', username: 'dev-a', password: 'secret-a' });
    expect(code).toBe(2);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MQTT_CLIENT_ID_INVALID' }]);
  });

  // Each id is registered in the authenticator, so only the client-id rule stands in the way.
  it.each(['dev+a', 'dev#a', 'dev/a', '$dev-a', '+', '#', 'd'.repeat(65)])('refuses the client id %j with CONNACK identifier-rejected', async (id) => {
    const h = await startBroker({ devices: { [id]: 's3cret' } });
    const { code } = await h.attempt({ clientId: id, username: id, password: 's3cret' });
    expect(code).toBe(2);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MQTT_CLIENT_ID_INVALID' }]);
    expect(h.broker.connectedCount()).toBe(0);
  });

  it.each([
    ['another device status', 'flt/v1/d/dev-b/status'],
    ['its own heartbeat', 'flt/v1/d/dev-a/heartbeat'],
    ['its own down channel', 'flt/v1/d/dev-a/desired'],
    ['$SYS', '$SYS/broker/new/clients'],
    ['a topic outside the scheme', 'alerts'],
  ])('refuses a last will aimed at %s with CONNACK not-authorized', async (_what, topic) => {
    const h = await startBroker();
    const { code } = await h.attempt({
      clientId: 'dev-a',
      username: 'dev-a',
      password: 'secret-a',
      will: { topic, payload: Buffer.from('offline'), qos: 1, retain: false },
    });
    expect(code).toBe(5);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MQTT_WILL_FORBIDDEN' }]);
  });

  it('refuses a last will larger than the payload limit', async () => {
    const h = await startBroker({ maxPayloadBytes: 64 });
    const { code } = await h.attempt({
      clientId: 'dev-a',
      username: 'dev-a',
      password: 'secret-a',
      will: { topic: 'flt/v1/d/dev-a/status', payload: Buffer.alloc(65), qos: 1, retain: true },
    });
    expect(code).toBe(5);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MSG_TOO_LARGE' }]);
  });

  it('publishes the last will on the device own status topic when the connection drops', async () => {
    const h = await startBroker();
    const client = await h.device('dev-a', { will: { topic: 'flt/v1/d/dev-a/status', payload: Buffer.from('offline'), qos: 1, retain: true } });
    client.stream.destroy();
    await vi.waitFor(() => expect(h.events.messages).toMatchObject([{ deviceId: 'dev-a', channel: 'status', payload: 'offline', retain: true }]));
    expect(h.events.log).toEqual(['connected dev-a', 'disconnected dev-a']);
  });

  it('answers CONNACK server-unavailable when the authenticator fails', async () => {
    const h = await startBroker({
      auth: {
        authenticate: () => {
          throw new Error('database is locked');
        },
      },
    });
    const { code } = await h.attempt({ clientId: 'dev-a', username: 'dev-a', password: 'secret-a' });
    expect(code).toBe(3);
    expect(await h.metric('flotilla_broker_connects_total', { result: 'error' })).toBe(1);
  });
});
