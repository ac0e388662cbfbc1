import { describe, expect, it } from 'vitest';
import { Agent } from '../src/agent.ts';
import { validateAgentConfig } from '../src/config/load.ts';
import { TestBroker } from './helpers/broker.ts';
import { startEnrollDouble } from './helpers/enroll-double.ts';
import { fakeInventory, once, startAgent } from './helpers/agent-harness.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { silentLogger } from './helpers/logger.ts';
import { ServerRole } from './helpers/server-role.ts';
import { tempDir } from './helpers/temp-dir.ts';

async function fleet() {
  const broker = await TestBroker.start();
  const double = await startEnrollDouble((req) => ({
    status: 200,
    body: { status: 'accepted', deviceId: req.deviceId, credential: 'cred-edge-1', mqtt: { tcp: broker.url } },
  }));
  const server = await ServerRole.connect(broker.url);
  return { broker, double, server, dataDir: tempDir() };
}

describe('agent daemon', () => {
  it('sends a heartbeat every heartbeatSec and follows the desired config.heartbeatSec override', async () => {
    const { double, server, dataDir } = await fleet();
    const timers = new FakeTimers();
    const stats = { loadAvg1: () => 0.5, memFreeBytes: () => 1024, diskFreeBytes: () => 4096 };
    const agent = await startAgent({ serverUrl: double.url, dataDir, heartbeatSec: 30 }, { timers, stats });
    await once(agent, 'connected');
    agent.enqueueEvent('test.event', {});

    timers.advance(30_000);
    const beat = await server.waitFor(() => server.of('heartbeat')[0]);
    expect(beat.body).toEqual({ uptimeSec: 30, loadAvg1: 0.5, memFreeBytes: 1024, diskFreeBytes: 4096, outboxDepth: 1 });
    expect(server.seen.find((s) => s.channel === 'heartbeat')!.qos).toBe(0);

    await server.sendDesired('edge-1', { generation: 1, models: {}, config: { heartbeatSec: 10 } });
    await server.waitFor(() => server.of('reported').find((r) => r.body.appliedGeneration === 1));
    timers.advance(10_000);
    await server.waitFor(() => server.of('heartbeat').length === 2);
    expect(server.of('heartbeat')[1]!.body.uptimeSec).toBe(40);
  });

  it('survives a restart: keeps its credential, re-publishes the reported state and replays its outbox', async () => {
    const { double, server, broker, dataDir } = await fleet();
    const first = await startAgent({ serverUrl: double.url, dataDir });
    await once(first, 'connected');
    await server.sendDesired('edge-1', { generation: 4, models: { digits: { version: '2.0.0' } } });
    await once(first, 'reported');
    broker.admit = (id) => id !== 'edge-1';
    broker.dropClient('edge-1');
    await once(first, 'disconnected');
    const pendingEvent = first.enqueueEvent('model.failed', { model: 'digits' }).entry;
    await first.close();

    server.seen.length = 0;
    broker.admit = () => true;
    const second = await startAgent({ serverUrl: double.url, dataDir });
    await once(second, 'connected');
    expect(double.requests).toHaveLength(1);
    const reported = await server.waitFor(() => server.of('reported')[0]);
    expect(reported.body).toEqual({ appliedGeneration: 4, models: { digits: { version: null, state: 'pending' } } });
    const event = await server.waitFor(() => server.of('events')[0]);
    expect(event.id).toBe(pendingEvent.id);
    expect(second.status()).toMatchObject({ enrollment: 'accepted', connected: true, appliedGeneration: 4 });
  });

  it('closes gracefully: publishes a retained offline status, and close() is safe to call twice', async () => {
    const { double, server, dataDir } = await fleet();
    const config = validateAgentConfig({ serverUrl: double.url, dataDir, deviceId: 'edge-1', enrollmentToken: 'fleet-token-0123456789' });
    const agent = await Agent.create(config, { logger: silentLogger, inventory: { collect: async () => fakeInventory } });
    await agent.start();
    await once(agent, 'connected');
    await Promise.all([agent.close(), agent.close()]);
    await agent.close();
    const status = await server.retained('edge-1', 'status');
    expect(status.message.body).toEqual({ state: 'offline' });
    expect(() => agent.enqueueEvent('after.close', {})).toThrow(expect.objectContaining({ code: 'FLT_AGENT_CLOSED' }));
  });

  it('can be scoped with await using', async () => {
    const config = validateAgentConfig({ serverUrl: 'http://127.0.0.1:9', dataDir: tempDir(), deviceId: 'edge-2' });
    let seen: Agent | undefined;
    {
      await using agent = await Agent.create(config, { logger: silentLogger, inventory: { collect: async () => fakeInventory } });
      seen = agent;
      expect(agent.metrics.registry.getSingleMetric('flotilla_agent_outbox_entries')).toBeDefined();
    }
    expect(() => seen!.enqueueEvent('after.dispose', {})).toThrow(expect.objectContaining({ code: 'FLT_AGENT_CLOSED' }));
  });
});
