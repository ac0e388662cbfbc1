import { Aedes } from 'aedes';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { boundDrainDepth } from '../../src/broker/drain-depth.ts';
import { createPolicyHooks } from '../../src/broker/hooks.ts';
import { BrokerMetrics } from '../../src/broker/metrics.ts';
import { SessionTable } from '../../src/broker/session-table.ts';
import { EventRecorder } from './harness.ts';

// aedes hands publishes to mqemitter, which queues them past its concurrency limit and, when a slot
// frees, starts the next queued one from inside the previous one's completion: a recursion one
// level per queued message. A backlog of a few thousand (10,000 devices under load) overflowed the
// stack and killed the server. FleetBroker bounds it with boundDrainDepth.
describe('broker message emitter under a backlog', () => {
  it('drains tens of thousands of queued publishes in order without overflowing the stack', async () => {
    const hooks = createPolicyHooks({
      auth: { authenticate: () => false },
      events: new EventRecorder(),
      metrics: new BrokerMetrics(new Registry(), () => 0),
      logger: pino({ level: 'silent' }),
      sessions: new SessionTable(),
      maxPayloadBytes: 1024,
      registered: () => undefined,
    });
    const broker = await Aedes.createBroker({ concurrency: 1, published: hooks.published });
    expect(boundDrainDepth((broker as unknown as { mq: unknown }).mq)).toBe(true);
    const order: number[] = [];
    broker.subscribe('flt/v1/d/+/telemetry', (packet, cb) => {
      order.push(Number(packet.payload.toString()));
      cb();
    }, () => {});
    try {
      // One slow delivery holds the only slot while the rest queue up behind it.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      broker.subscribe('hold', (_packet, cb) => void held.then(() => cb()), () => {});
      const publish = (topic: string, n = -1) =>
        new Promise<void>((resolve, reject) =>
          broker.publish({ cmd: 'publish', topic, payload: Buffer.from(String(n)), qos: 0, retain: false, dup: false }, (err?: Error) => (err ? reject(err) : resolve())),
        );
      const first = publish('hold');
      const rest = Array.from({ length: 30_000 }, (_, i) => publish(`flt/v1/d/dev-${i % 50}/telemetry`, i));
      release();
      await first;
      const settled = await Promise.allSettled(rest);
      expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
      expect(settled).toHaveLength(30_000);
      expect(order).toEqual(Array.from({ length: 30_000 }, (_, i) => i));
    } finally {
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });
});
