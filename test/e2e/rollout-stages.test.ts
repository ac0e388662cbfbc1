import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, tokenFor, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface ReportedModel {
  version: string | null;
  state: string;
  error?: string;
}
interface DeviceView {
  reported: { appliedGeneration: number; models: Record<string, ReportedModel> } | null;
  desired: { generation: number; models: Record<string, { version: string; rollout?: string }> } | null;
}
interface RolloutView {
  id: string;
  state: string;
  stage: number;
  reason: string | null;
  counts: Record<string, number>;
}
interface RolloutDevice {
  deviceId: string;
  stage: number;
  state: string;
  fromVersion: string | null;
  error: string | null;
}

const IDS = ['edge-a', 'edge-b', 'edge-c', 'edge-d'];

/**
 * One server and four real agent daemons shared by the tests below, which run in order: the fleet
 * goes 1.0.0 → 1.1.0 by a staged rollout, then a canary of a build that fails its self-test aborts
 * and reverts a second rollout.
 */
describe('staged rollouts end to end: real server, four agent daemons', () => {
  let t: TestServer;
  let operator: string;
  let root: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    const cards = await otaBuilds();
    t = await startServer();
    root = mkdtempSync(join(tmpdir(), 'flt-rollout-e2e-'));
    operator = await tokenFor(t, 'operator');
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.0.0');
    await publishBuild(t, cards.get('mnist-edge-fp32')!, 'digits', '1.1.0');
    await publishBuild(t, cards.get('mnist-edge-int8-bad-golden')!, 'digits', '1.2.0');
    for (const id of IDS) {
      const res = await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id, labels: { fleet: 'e2e' } } });
      expect(res.statusCode).toBe(201);
      agents.push(
        spawnTestAgent({ serverUrl: t.http, deviceId: id, enrollmentToken: ENROLL_TOKEN, dataDir: join(root, id) }),
      );
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const device = async (id: string): Promise<DeviceView> => (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${id}`, headers: auth(ADMIN_TOKEN) })).json() as DeviceView;
  const fleet = () => Promise.all(IDS.map(device));
  const rollout = async (id: string): Promise<RolloutView> => (await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${id}`, headers: auth(operator) })).json() as RolloutView;
  const rolloutDevices = async (id: string): Promise<RolloutDevice[]> =>
    ((await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${id}/devices`, headers: auth(operator) })).json() as { items: RolloutDevice[] }).items;
  const command = (id: string, name: string) => t.server.http.inject({ method: 'POST', url: `/v1/rollouts/${id}/${name}`, headers: auth(operator) });
  const create = (spec: object) => t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec });
  const healthyOn = (d: DeviceView, version: string) =>
    (d.reported?.appliedGeneration ?? 0) >= (d.desired?.generation ?? 1) && d.reported?.models.digits?.version === version && d.reported.models.digits.state === 'healthy';

  it('moves the whole fleet to 1.1.0 through a canary and an approval gate, holding while paused', async () => {
    for (const id of IDS) {
      const res = await t.server.http.inject({ method: 'PUT', url: `/v1/devices/${id}/desired`, headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
      expect(res.statusCode).toBe(200);
    }
    await eventually(fleet, (ds) => ds.every((d) => healthyOn(d, '1.0.0')), { what: 'every agent healthy on 1.0.0', timeoutMs: 60_000 });

    const spec = {
      id: 'e2e-digits-110',
      target: { labels: { fleet: 'e2e' } },
      model: 'digits',
      version: '1.1.0',
      stages: [{ count: 1 }, { percent: 100, requireApproval: true }],
      perDeviceTimeoutSec: 120,
    };
    expect((await create(spec)).statusCode).toBe(201);
    await eventually(() => rollout(spec.id), (r) => r.state === 'awaitingApproval', { what: 'canary done, gate reached', timeoutMs: 45_000 });
    const atGate = await rolloutDevices(spec.id);
    expect(atGate.filter((d) => d.stage === 0).map((d) => d.state)).toEqual(['succeeded']);
    expect(atGate.filter((d) => d.stage === 1).map((d) => d.state)).toEqual(['pending', 'pending', 'pending']);

    // Paused, the gate cannot be passed; resumed, it waits for the approval again.
    expect((await command(spec.id, 'pause')).json()).toMatchObject({ state: 'paused' });
    const refused = await command(spec.id, 'approve');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('FLT_ROLLOUT_STATE_CONFLICT');
    expect((await rolloutDevices(spec.id)).filter((d) => d.state === 'pending')).toHaveLength(3);
    expect((await command(spec.id, 'resume')).statusCode).toBe(200);
    await eventually(() => rollout(spec.id), (r) => r.state === 'awaitingApproval', { what: 'gate again after resume' });
    expect((await command(spec.id, 'approve')).json()).toMatchObject({ state: 'running', stage: 1 });

    const done = await eventually(() => rollout(spec.id), (r) => r.state === 'completed', { what: 'rollout completed', timeoutMs: 60_000 });
    expect(done.counts).toMatchObject({ succeeded: 4, failed: 0, pending: 0, notified: 0 });
    const ds = await eventually(fleet, (xs) => xs.every((d) => healthyOn(d, '1.1.0')), { what: 'every agent healthy on 1.1.0' });
    for (const d of ds) expect(d.desired!.models.digits).toMatchObject({ version: '1.1.0', rollout: spec.id });
    expect((await rolloutDevices(spec.id)).every((d) => d.fromVersion === '1.0.0')).toBe(true);
  }, 150_000);

  it('aborts and reverts when the canary fails its self-test, never notifying the devices behind it', async () => {
    const before = new Map((await fleet()).map((d, i) => [IDS[i]!, d.desired!.generation]));
    const spec = {
      id: 'e2e-digits-120',
      target: { labels: { fleet: 'e2e' } },
      model: 'digits',
      version: '1.2.0',
      stages: [{ count: 1 }, { percent: 100 }],
      abortRules: [{ failureType: 'failed', thresholdPercent: 1, minExecuted: 1 }],
      onAbort: 'revert',
      perDeviceTimeoutSec: 120,
    };
    expect((await create(spec)).statusCode).toBe(201);
    const ended = await eventually(() => rollout(spec.id), (r) => r.state === 'reverted', { what: 'rollout reverted', timeoutMs: 45_000 });
    expect(ended.reason).toMatch(/^aborted: /);

    const rows = await rolloutDevices(spec.id);
    const canary = rows.find((d) => d.stage === 0)!;
    expect(canary).toMatchObject({ fromVersion: '1.1.0' });
    expect(['failed', 'reverted']).toContain(canary.state);
    const events = (await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${spec.id}/events?devices=true`, headers: auth(operator) })).json() as {
      items: Array<{ kind: string; deviceId: string | null; details: { error?: string } | null }>;
    };
    expect(JSON.stringify(events.items.filter((e) => e.deviceId === canary.deviceId))).toContain('FLT_OTA_SELFTEST_FAILED');

    // The canary went back on its own, and the revert named 1.1.0 again as a new generation.
    const c = await eventually(() => device(canary.deviceId), (d) => healthyOn(d, '1.1.0'), { what: 'canary healthy on 1.1.0 after the revert' });
    expect(c.desired!.models.digits!.version).toBe('1.1.0');
    expect(c.desired!.generation).toBeGreaterThan(before.get(canary.deviceId)! + 1);

    // Nobody behind the canary was ever sent 1.2.0.
    const others = rows.filter((d) => d.deviceId !== canary.deviceId);
    expect(others).toHaveLength(3);
    for (const o of others) {
      expect(['pending', 'skipped']).toContain(o.state);
      const d = await device(o.deviceId);
      expect(d.desired!.generation).toBe(before.get(o.deviceId));
      expect(d.desired!.models.digits!.version).toBe('1.1.0');
      expect(healthyOn(d, '1.1.0')).toBe(true);
    }
  }, 120_000);

  it('refuses rollouts of unknown versions, empty targets, out-of-range thresholds and invalid windows with their codes', async () => {
    const spec = { target: { labels: { fleet: 'e2e' } }, model: 'digits', version: '1.1.0', stages: [{ percent: 100 }] };
    const unknown = await create({ ...spec, version: '9.9.9' });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({ code: 'FLT_ROLLOUT_UNKNOWN_VERSION', details: { model: 'digits', version: '9.9.9' } });
    const tensor = { name: 'x', dtype: 'float32', shape: [-1, 4] };
    // A draft cannot be installed by any agent either (it has no signed manifest yet).
    const draft = await t.server.http.inject({ method: 'POST', url: '/v1/models/digits/versions', headers: auth(ADMIN_TOKEN), payload: { version: '1.3.0', metadata: { inputs: [tensor], outputs: [tensor] } } });
    expect(draft.statusCode).toBe(201);
    expect((await create({ ...spec, version: '1.3.0' })).json().code).toBe('FLT_ROLLOUT_UNKNOWN_VERSION');
    const noTargets = await create({ ...spec, target: { labels: { fleet: 'nowhere' } } });
    expect(noTargets.statusCode).toBe(422);
    expect(noTargets.json().code).toBe('FLT_ROLLOUT_NO_TARGETS');
    const threshold = await create({ ...spec, stages: [{ percent: 100, successThreshold: 101 }] });
    expect(threshold.statusCode).toBe(400);
    const abortThreshold = await create({ ...spec, abortRules: [{ failureType: 'failed', thresholdPercent: -1 }] });
    expect(abortThreshold.statusCode).toBe(400);
    const cron = await create({ ...spec, maintenanceWindow: { cron: '61 25 * * *', durationSec: 3600 } });
    expect(cron.statusCode).toBe(400);
    expect(cron.json().code).toBe('FLT_ROLLOUT_WINDOW_INVALID');
    // Nothing refused left a rollout behind.
    const list = (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts', headers: auth(operator) })).json() as { items: RolloutView[] };
    expect(list.items.map((r) => r.id).sort()).toEqual(['e2e-digits-110', 'e2e-digits-120']);
  });
});
