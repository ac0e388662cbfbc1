import { UP_CHANNELS } from '@flotilla/protocol';
import { describe, expect, it, vi } from 'vitest';
import { publishOutcome, startBroker, subackCode } from './harness.ts';

describe('broker publish policy', () => {
  it.each(UP_CHANNELS)('delivers a publish on the device own %s channel to the server', async (channel) => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, `flt/v1/d/dev-a/${channel}`, `{"on":"${channel}"}`)).toBe('acked');
    await vi.waitFor(() =>
      expect(h.events.messages).toEqual([{ deviceId: 'dev-a', channel, payload: `{"on":"${channel}"}`, retain: false, qos: 1 }]),
    );
    expect(await h.metric('flotilla_broker_messages_in_total', { channel })).toBe(1);
  });

  it('accepts a retained publish on the device own status topic', async () => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/status', 'online', true)).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages).toMatchObject([{ channel: 'status', retain: true }]));
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
    ['a topic outside the scheme', 'factory/line-1/alarm'],
    ['another protocol version', 'flt/v2/d/dev-a/status'],
  ])('closes the connection of a device publishing to %s', async (_what, topic) => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, topic, 'x')).toBe('closed');
    expect(h.events.messages).toEqual([]);
    expect(h.events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
    expect(await h.metric('flotilla_broker_policy_violations_total', { code: 'FLT_MQTT_TOPIC_FORBIDDEN' })).toBe(1);
    await vi.waitFor(() => expect(h.broker.isConnected('dev-a')).toBe(false));
  });

  it.each(['heartbeat', 'reported', 'events', 'inventory'])('closes the connection of a device retaining a message on its %s channel', async (channel) => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, `flt/v1/d/dev-a/${channel}`, 'x', true)).toBe('closed');
    expect(h.events.messages).toEqual([]);
    expect(h.events.violations).toMatchObject([{ code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
  });

  it('cannot kick another device by forging the broker $SYS client announcement', async () => {
    const h = await startBroker();
    const victim = await h.device('dev-b');
    const attacker = await h.device('dev-a');
    // aedes closes a local client when another broker instance announces the same client id here.
    expect(await publishOutcome(attacker, '$SYS/other-broker/new/clients', 'dev-b')).toBe('closed');
    expect(await publishOutcome(victim, 'flt/v1/d/dev-b/heartbeat', 'alive')).toBe('acked');
    expect(h.broker.isConnected('dev-b')).toBe(true);
  });

  it('does not deliver a device publish on its up channel to another device subscribed there', async () => {
    const h = await startBroker();
    const listener = await h.device('dev-b');
    const got: string[] = [];
    listener.on('message', (topic) => got.push(topic));
    // The subscription is refused (SUBACK 128), so nothing can arrive; checked end to end here.
    expect(await subackCode(listener, 'flt/v1/d/dev-a/#')).toBe(128);
    const device = await h.device('dev-a');
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/reported', '{}')).toBe('acked');
    await vi.waitFor(() => expect(h.events.messages).toHaveLength(1));
    await listener.unsubscribeAsync('flt/v1/d/dev-b/desired');
    expect(got).toEqual([]);
  });
});
