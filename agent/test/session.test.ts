import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DesiredState, ReportedState } from '@flotilla/protocol';
import type { DesiredStateApplier } from '../src/state/applier.ts';
import { TestBroker } from './helpers/broker.ts';
import { startEnrollDouble } from './helpers/enroll-double.ts';
import { fakeInventory, once, startAgent, TOKEN } from './helpers/agent-harness.ts';
import { ServerRole } from './helpers/server-role.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { eventually } from './helpers/eventually.ts';

async function fleet() {
  const broker = await TestBroker.start();
  const double = await startEnrollDouble((req) => ({
    status: 200,
    body: { status: 'accepted', deviceId: req.deviceId, credential: 'cred-edge-1', mqtt: { tcp: broker.url } },
  }));
  const server = await ServerRole.connect(broker.url);
  return { broker, double, server, dataDir: tempDir() };
}

describe('agent MQTT session (aedes in-process, the test plays the server)', () => {
  it('enrolls, connects, and publishes a retained online status and its inventory', async () => {
    const { double, server, dataDir } = await fleet();
    const agent = await startAgent({ serverUrl: double.url, dataDir, labels: { site: 'lab' } });
    await once(agent, 'connected');
    expect(double.requests[0]).toMatchObject({ enrollmentToken: TOKEN, deviceId: 'edge-1', labels: { site: 'lab' }, inventory: fakeInventory });
    await server.waitFor(() => server.of('inventory').length > 0);
    expect(server.of('inventory')[0]!.body).toEqual(fakeInventory);
    const status = await server.retained('edge-1', 'status');
    expect(status.retain).toBe(true);
    expect(status.message.body).toEqual({ state: 'online' });
    expect(agent.status()).toMatchObject({ enrollment: 'accepted', connected: true });
  });

  it('leaves a retained offline status through its last will when the connection dies, then comes back online', async () => {
    const { double, server, broker, dataDir } = await fleet();
    const agent = await startAgent({ serverUrl: double.url, dataDir });
    await once(agent, 'connected');
    await server.waitFor(() => server.of('status').some((s) => s.body.state === 'online'));

    // Kill the agent's socket on the broker side (no DISCONNECT) and keep it out for a moment.
    broker.admit = (id) => id !== 'edge-1';
    broker.dropClient('edge-1');
    await server.waitFor(() => server.of('status').some((s) => s.body.state === 'offline'));
    const will = await server.retained('edge-1', 'status');
    expect(will).toMatchObject({ retain: true, message: { type: 'status', body: { state: 'offline' } } });

    const back = once(agent, 'connected');
    broker.admit = () => true;
    await back;
    const status = await server.waitFor(() => server.of('status').at(-1)?.body.state === 'online');
    expect(status).toBe(true);
    expect((await server.retained('edge-1', 'status')).message.body).toEqual({ state: 'online' });
  });

  it('re-enrolls with the same key when the broker refuses its credential, then connects with the new one', async () => {
    const broker = await TestBroker.start({ authenticate: (_id, _user, password) => password === 'cred-2' });
    const double = await startEnrollDouble((req, n) => ({
      status: 200,
      body: { status: 'accepted', deviceId: req.deviceId, credential: `cred-${n}`, mqtt: { tcp: broker.url } },
    }));
    const dataDir = tempDir();
    const agent = await startAgent({ serverUrl: double.url, dataDir });
    await once(agent, 'connected');
    expect(double.requests).toHaveLength(2);
    expect(double.requests[1]!.enrollmentKey).toBe(double.requests[0]!.enrollmentKey);
    const identity = JSON.parse(readFileSync(join(dataDir, 'identity.json'), 'utf8'));
    expect(identity.credential).toBe('cred-2');
  });

  it('stops enrolling and stays up when the server refuses the device', async () => {
    const double = await startEnrollDouble(() => ({ status: 403, body: { code: 'FLT_DEVICE_REVOKED', message: 'revoked' } }));
    const agent = await startAgent({ serverUrl: double.url, dataDir: tempDir() });
    const [state, code] = await once<[string, string]>(agent, 'enrollment');
    expect([state, code]).toEqual(['refused', 'FLT_DEVICE_REVOKED']);
    expect(agent.status()).toMatchObject({ enrollment: 'refused', enrollmentCode: 'FLT_DEVICE_REVOKED', connected: false });
    // Local work still goes on: events are kept for later.
    expect(agent.enqueueEvent('local.note', { ok: true }).stored).toBe(true);
  });

  it('applies a desired state and reports it with appliedGeneration; a lower generation is ignored', async () => {
    const { double, server, dataDir } = await fleet();
    const applied: number[] = [];
    const applier: DesiredStateApplier = {
      async apply(desired: DesiredState): Promise<ReportedState['models']> {
        applied.push(desired.generation);
        return Object.fromEntries(Object.keys(desired.models).map((m) => [m, { version: null, state: 'pending' as const }]));
      },
    };
    const agent = await startAgent({ serverUrl: double.url, dataDir }, { applier });
    await once(agent, 'connected');

    await server.sendDesired('edge-1', { generation: 5, models: { digits: { version: '1.0.0' } } });
    const reported = await server.waitFor(() => server.of('reported').find((r) => r.body.appliedGeneration === 5));
    expect(reported.body).toEqual({ appliedGeneration: 5, models: { digits: { version: null, state: 'pending' } } });

    await server.sendDesired('edge-1', { generation: 3, models: { old: { version: '0.1.0' } } });
    await server.sendDesired('edge-1', { generation: 6, models: {} });
    await server.waitFor(() => server.of('reported').find((r) => r.body.appliedGeneration === 6));
    expect(applied).toEqual([5, 6]);
    expect(agent.status().appliedGeneration).toBe(6);
  });

  it('ignores garbage on desired, ack and cmd without crashing, counting each by code', async () => {
    const { double, server, dataDir } = await fleet();
    const agent = await startAgent({ serverUrl: double.url, dataDir });
    await once(agent, 'connected');
    const rejected: string[] = [];
    agent.on('rejected', (channel, code) => rejected.push(`${channel}:${code}`));
    await server.sendRaw('edge-1', 'desired', '{not json');
    await server.sendRaw('edge-1', 'desired', JSON.stringify({ v: 1, type: 'desired', id: 'abcdefgh1', ts: 1, body: { generation: -1, models: {} } }));
    await server.sendRaw('edge-1', 'desired', JSON.stringify({ v: 9, type: 'desired' }));
    await server.sendRaw('edge-1', 'ack', JSON.stringify({ v: 1, type: 'desired', id: 'abcdefgh2', ts: 1, body: { generation: 1, models: {} } }));
    await server.sendRaw('edge-1', 'cmd', Buffer.from([0xff, 0x00, 0x13]));
    await server.sendDesired('edge-1', { generation: 2, models: {} });
    await server.waitFor(() => server.of('reported').find((r) => r.body.appliedGeneration === 2));
    expect(rejected).toEqual(['desired:FLT_MSG_MALFORMED_JSON', 'desired:FLT_MSG_INVALID', 'desired:FLT_MSG_BAD_VERSION', 'ack:FLT_MSG_WRONG_CHANNEL', 'cmd:FLT_MSG_MALFORMED_JSON']);
    const metrics = await agent.metrics.registry.getSingleMetricAsString('flotilla_agent_messages_rejected_total');
    expect(metrics).toContain('channel="desired",code="FLT_MSG_MALFORMED_JSON"} 1');
    expect(agent.status().connected).toBe(true);
  });

  it('replays unacknowledged events in order after the broker goes down and comes back; acked ones are never resent', async () => {
    const { double, server, broker, dataDir } = await fleet();
    const agent = await startAgent({ serverUrl: double.url, dataDir });
    await once(agent, 'connected');

    const a = agent.enqueueEvent('test.event', { n: 1 }).entry;
    const b = agent.enqueueEvent('test.event', { n: 2 }).entry;
    await server.waitFor(() => server.of('events').length >= 2);
    await server.ack('edge-1', [a.id]);
    await eventually(() => agent.outbox.depth().entries === 1);

    // The broker dies; the device keeps working and commits its events locally.
    broker.admit = (id) => id !== 'edge-1';
    await broker.stop();
    const offline = [3, 4, 5].map((n) => agent.enqueueEvent('test.event', { n }).entry);
    expect(agent.outbox.depth().entries).toBe(4);

    const serverBack = server.reconnected();
    await broker.restart();
    await serverBack;
    server.seen.length = 0;
    const agentBack = once(agent, 'connected');
    broker.admit = () => true;
    await agentBack;

    const events = await server.waitFor(() => (server.of('events').length >= 4 ? server.of('events') : undefined));
    expect(events.map((e) => e.id)).toEqual([b.id, ...offline.map((e) => e.id)]);
    expect(events.map((e) => e.body.seq)).toEqual([b.seq, ...offline.map((e) => e.seq)]);
    expect(events.map((e) => e.body.data.n)).toEqual([2, 3, 4, 5]);

    await server.ack('edge-1', events.map((e) => e.id));
    await eventually(() => agent.outbox.depth().entries === 0);

    // Once acked, nothing comes back: reconnect again, then send a fresh event as a marker.
    server.seen.length = 0;
    const again = once(agent, 'connected');
    broker.dropClient('edge-1');
    await again;
    const after = agent.enqueueEvent('test.after', {}).entry;
    await server.waitFor(() => server.of('events').some((e) => e.id === after.id));
    expect(server.of('events').map((e) => e.id)).toEqual([after.id]);
  });

  it('bounds the outbox while offline, counts the drops and reports them as an outbox.dropped event', async () => {
    const { double, server, broker, dataDir } = await fleet();
    broker.admit = (id) => id !== 'edge-1';
    const agent = await startAgent({ serverUrl: double.url, dataDir, outbox: { maxEntries: 16 } });
    const entries = Array.from({ length: 20 }, (_, n) => agent.enqueueEvent('test.event', { n }));
    expect(agent.outbox.depth().entries).toBe(16);
    expect(entries.every((e) => e.stored)).toBe(true);
    const dropped = await agent.metrics.registry.getSingleMetric('flotilla_agent_outbox_dropped_total')!.get();
    expect(dropped.values[0]!.value).toBe(5);

    const back = once(agent, 'connected');
    broker.admit = () => true;
    await back;
    const events = await server.waitFor(() => (server.of('events').length >= 16 ? server.of('events') : undefined));
    const marker = events.find((e) => e.body.kind === 'outbox.dropped');
    expect(marker?.body.data.count).toBe(5);
    const kept = events.filter((e) => e.body.kind === 'test.event').map((e) => e.body.data.n);
    expect(kept).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const seqs = events.map((e) => e.body.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });
});
