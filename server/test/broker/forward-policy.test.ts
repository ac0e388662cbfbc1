import type { Client } from 'aedes';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { mayForward } from '../../src/broker/index.ts';
import { createPolicyHooks } from '../../src/broker/hooks.ts';
import { BrokerMetrics } from '../../src/broker/metrics.ts';
import { SessionTable } from '../../src/broker/session-table.ts';
import { EventRecorder } from './harness.ts';

// Subscriptions are already confined to the device prefix, so no client on the wire can make the
// broker route a foreign message to a device. These tests stand in for a subscription that went
// wrong (a bug, a restored session, a future feature) and check the forwarding hook on its own.
describe('broker forwarding policy', () => {
  const hooks = () => {
    const events = new EventRecorder();
    const sessions = new SessionTable();
    const h = createPolicyHooks({
      auth: { authenticate: () => false },
      events,
      metrics: new BrokerMetrics(new Registry(), () => 0),
      logger: pino({ level: 'silent' }),
      sessions,
      maxPayloadBytes: 1024,
      registered: () => undefined,
    });
    return { h, events };
  };
  const client = (id: string) => ({ id, closed: false }) as unknown as Client;
  const packet = (topic: string) => ({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false }) as never;

  it('forwards a message under the receiving device own prefix', () => {
    const { h } = hooks();
    expect(h.authorizeForward(client('dev-a'), packet('flt/v1/d/dev-a/desired'))).toBeTruthy();
  });

  it.each(['flt/v1/d/dev-b/desired', 'flt/v1/d/dev-ab/desired', 'flt/v1/d/dev-a', '$SYS/x/new/clients', 'other/dev-a/desired'])(
    'refuses to forward %j to dev-a even when a subscription matched it, and reports it',
    (topic) => {
      const { h, events } = hooks();
      expect(h.authorizeForward(client('dev-a'), packet(topic))).toBeNull();
      expect(events.violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
    },
  );

  it('never forwards to a client whose id is not a device id', () => {
    expect(mayForward('dev+a', 'flt/v1/d/dev+a/desired')).toBe(false);
  });
});
