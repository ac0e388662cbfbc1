import { connect } from 'mqtt';
import { describe, expect, it, vi } from 'vitest';
import { FleetBroker, MQTT_WS_PATH } from '../../src/broker/index.ts';
import { pino } from 'pino';
import { closedByBroker, EventRecorder, publishOutcome, startBroker } from './harness.ts';

describe('broker lifecycle', () => {
  it('kicks a connected device at once and reports it disconnected', async () => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    await vi.waitFor(() => expect(h.broker.isConnected('dev-a')).toBe(true));
    expect(h.broker.kick('dev-a')).toBe(true);
    await closedByBroker(device);
    await vi.waitFor(() => expect(h.events.log).toEqual(['connected dev-a', 'disconnected dev-a']));
    expect(h.broker.isConnected('dev-a')).toBe(false);
    expect(h.broker.kick('dev-a')).toBe(false);
  });

  it('kicks a device whose authentication is still in flight, so a stale "accepted" cannot let it in', async () => {
    let release: (ok: boolean) => void = () => {};
    const h = await startBroker({
      auth: { authenticate: () => new Promise<boolean>((resolve) => (release = resolve)) },
    });
    const outcome = h.attempt({ clientId: 'dev-a', username: 'dev-a', password: 'secret-a' }).then(
      () => 'connected',
      () => 'closed',
    );
    await vi.waitFor(() => expect(h.broker.kick('dev-a')).toBe(true));
    release(true);
    expect(await outcome).toBe('closed');
    expect(h.broker.isConnected('dev-a')).toBe(false);
    expect(h.events.log).toEqual([]);
  });

  it('accepts a device over WebSocket on /mqtt', async () => {
    const h = await startBroker({ ws: true });
    const device = connect(`ws://127.0.0.1:${h.wsPort}${MQTT_WS_PATH}`, {
      clientId: 'dev-a',
      username: 'dev-a',
      password: 'secret-a',
      reconnectPeriod: 0,
    });
    device.on('error', () => {});
    await new Promise<void>((resolve) => device.once('connect', () => resolve()));
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/heartbeat', 'over ws')).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages).toMatchObject([{ deviceId: 'dev-a', channel: 'heartbeat', payload: 'over ws' }]));
    await h.broker.close();
    await closedByBroker(device);
  });

  it('closes every client on close(), and close() can be called twice', async () => {
    const h = await startBroker({ ws: true });
    const a = await h.device('dev-a');
    const b = await h.device('dev-b');
    await Promise.all([h.broker.close(), h.broker.close()]);
    await Promise.all([closedByBroker(a), closedByBroker(b)]);
    expect(h.broker.connectedCount()).toBe(0);
    await expect(h.broker.listen({ host: '127.0.0.1', tcpPort: 0 })).rejects.toThrow(/closed/);
    await expect(h.broker.publish('flt/v1/d/dev-a/desired', Buffer.from('x'), { qos: 0, retain: false })).rejects.toThrow(/closed/);
  });

  it('closes a broker that never listened', async () => {
    const broker = await FleetBroker.create({
      auth: { authenticate: () => true },
      events: new EventRecorder(),
      logger: pino({ level: 'silent' }),
    });
    await broker.close();
    await broker.close();
  });

  it('keeps serving when a server event handler throws', async () => {
    const h = await startBroker();
    h.events.deviceMessage = () => {
      throw new Error('handler bug');
    };
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/heartbeat', '1')).toBe('acked');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/heartbeat', '2')).toBe('acked');
    expect(h.broker.isConnected('dev-a')).toBe(true);
  });

  it('refuses a server publish to a wildcard topic', async () => {
    const h = await startBroker();
    await expect(h.broker.publish('flt/v1/d/+/desired', Buffer.from('x'), { qos: 1, retain: false })).rejects.toThrow(TypeError);
  });

  it('exposes the broker metrics on the injected registry', async () => {
    const h = await startBroker();
    await h.device('dev-a');
    const text = await h.registry.metrics();
    for (const name of [
      'flotilla_broker_connected_clients',
      'flotilla_broker_connects_total',
      'flotilla_broker_policy_violations_total',
      'flotilla_broker_messages_in_total',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(await h.metric('flotilla_broker_connected_clients')).toBe(1);
  });
});
