import { describe, expect, it, vi } from 'vitest';
import { publishOutcome, startBroker, subackCode, subackCodes } from './harness.ts';

describe('broker subscribe policy', () => {
  it.each(['flt/v1/d/dev-a/desired', 'flt/v1/d/dev-a/ack', 'flt/v1/d/dev-a/cmd', 'flt/v1/d/dev-a/+', 'flt/v1/d/dev-a/#'])(
    'grants a device the subscription %j under its own prefix',
    async (filter) => {
      const h = await startBroker();
      const device = await h.device('dev-a');
      expect(await subackCode(device, filter)).toBe(1);
      expect(h.events.violations).toEqual([]);
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
  ])('answers SUBACK 128 to a device subscribing to %j and keeps it connected', async (filter) => {
    const h = await startBroker({ devices: { 'dev-a': 'secret-a', 'dev-b': 'secret-b', 'dev-ab': 'secret-ab' } });
    const device = await h.device('dev-a');
    expect(await subackCode(device, filter)).toBe(128);
    expect(h.events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
    expect(await publishOutcome(device, 'flt/v1/d/dev-a/heartbeat', 'still connected')).toBe('acked');
  });

  it('grants the allowed filters and refuses the others within one SUBSCRIBE', async () => {
    const h = await startBroker();
    const device = await h.device('dev-a');
    expect(await subackCodes(device, ['flt/v1/d/dev-a/desired', 'flt/v1/d/dev-b/desired'])).toEqual([1, 128]);
  });

  it('delivers the server desired state to its device and never to another device', async () => {
    const h = await startBroker();
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
    const h = await startBroker();
    await h.broker.publish('flt/v1/d/dev-a/desired', Buffer.from('gen-2'), { qos: 1, retain: true });
    const a = await h.device('dev-a');
    const got: string[] = [];
    a.on('message', (topic, payload, packet) => got.push(`${topic} ${payload.toString()} retain=${packet.retain}`));
    expect(await subackCode(a, 'flt/v1/d/dev-a/desired')).toBe(1);
    await vi.waitFor(() => expect(got).toEqual(['flt/v1/d/dev-a/desired gen-2 retain=true']));
  });
});
