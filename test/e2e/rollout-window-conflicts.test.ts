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
  target?: string;
  activateAfter?: number;
}
interface DeviceView {
  reported: { appliedGeneration: number; models: Record<string, ReportedModel> } | null;
  desired: { generation: number; models: Record<string, { version: string; rollout?: string }> } | null;
}
interface DeviceEvent {
  kind: string;
  ts: number;
  data: { model?: string; version?: string };
}

const IDS = ['edge-w1', 'edge-w2'];

/**
 * A yearly window that opens about half a year from now, as a 5-field cron expression in UTC:
 * never open while the test runs, and further off than one Node timer can hold (24.8 days).
 * Day 28 at most, so it opens every year.
 */
function yearlyCronHalfAYearAway(): string {
  const d = new Date(Date.now() + 180 * 86_400_000);
  return `${d.getUTCMinutes()} ${d.getUTCHours()} ${Math.min(28, d.getUTCDate())} ${d.getUTCMonth() + 1} *`;
}

/** The next whole second at least `leadMs` ahead, as a daily 6-field cron expression in UTC. */
function dailyCronAt(leadMs: number): { at: number; cron: string } {
  const at = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
  const d = new Date(at);
  return { at, cron: `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *` };
}

/**
 * One server and two real agent daemons: a maintenance window holds activation while the devices
 * download ahead, then conflicting rollouts are refused or pre-empt by priority as docs/rollouts.md says.
 */
describe('rollout maintenance windows and conflicts end to end', () => {
  let t: TestServer;
  let operator: string;
  let root: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    const cards = await otaBuilds();
    t = await startServer();
    root = mkdtempSync(join(tmpdir(), 'flt-rollout-window-'));
    operator = await tokenFor(t, 'operator');
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.0.0');
    await publishBuild(t, cards.get('mnist-edge-fp32')!, 'digits', '1.1.0');
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.2.0');
    for (const id of IDS) {
      expect((await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id, labels: { fleet: 'window' } } })).statusCode).toBe(201);
      const desired = await t.server.http.inject({ method: 'PUT', url: `/v1/devices/${id}/desired`, headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
      expect(desired.statusCode).toBe(200);
      agents.push(
        spawnTestAgent({ serverUrl: t.http, deviceId: id, enrollmentToken: ENROLL_TOKEN, dataDir: join(root, id) }),
      );
    }
    await eventually(fleet, (ds) => ds.every((d) => healthyOn(d, '1.0.0')), { what: 'every agent healthy on 1.0.0', timeoutMs: 90_000 });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const device = async (id: string): Promise<DeviceView> => (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${id}`, headers: auth(ADMIN_TOKEN) })).json() as DeviceView;
  const fleet = () => Promise.all(IDS.map(device));
  const deviceEvents = async (id: string): Promise<DeviceEvent[]> =>
    ((await t.server.http.inject({ method: 'GET', url: `/v1/devices/${id}/events?limit=1000`, headers: auth(ADMIN_TOKEN) })).json() as { items: DeviceEvent[] }).items;
  const rollout = async (id: string) => (await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${id}`, headers: auth(operator) })).json() as { state: string; counts: Record<string, number>; reason: string | null };
  const create = (spec: object) => t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec });
  const healthyOn = (d: DeviceView, version: string) =>
    (d.reported?.appliedGeneration ?? 0) >= (d.desired?.generation ?? 1) && d.reported?.models.digits?.version === version && d.reported.models.digits.state === 'healthy';
  const target = { labels: { fleet: 'window' } };

  it('lets devices download before the maintenance window and activate only inside it; a conflicting rollout is refused meanwhile', async () => {
    const window = dailyCronAt(15_000);
    const spec = {
      id: 'window-digits-110',
      target,
      model: 'digits',
      version: '1.1.0',
      stages: [{ percent: 100 }],
      maintenanceWindow: { cron: window.cron, durationSec: 120, timeZone: 'UTC' },
      priority: 5,
      perDeviceTimeoutSec: 120,
    };
    expect((await create(spec)).statusCode).toBe(201);

    // Before the window: verified ahead, still serving 1.0.0.
    const waiting = await eventually(
      fleet,
      (ds) => ds.every((d) => d.reported?.models.digits?.state === 'verified' && d.reported.models.digits.target === '1.1.0'),
      { what: 'every agent verified 1.1.0 and waiting for the window', timeoutMs: 14_000 },
    );
    expect(Date.now()).toBeLessThan(window.at);
    for (const d of waiting) expect(d.reported!.models.digits).toMatchObject({ version: '1.0.0', activateAfter: window.at });

    // The same devices and model are held by an active rollout: refused, with or without pre-emption at a priority not above it.
    for (const extra of [{}, { preempt: true, priority: 5 }]) {
      const conflict = await create({ ...spec, id: undefined, version: '1.2.0', maintenanceWindow: undefined, ...extra });
      expect(conflict.statusCode).toBe(409);
      expect(conflict.json()).toMatchObject({ code: 'FLT_ROLLOUT_CONFLICT', details: { rolloutId: spec.id, priority: 5, overlap: 2 } });
    }

    const done = await eventually(() => rollout(spec.id), (r) => r.state === 'completed', { what: 'rollout completed inside the window', timeoutMs: 45_000 });
    expect(done.counts).toMatchObject({ succeeded: 2, failed: 0 });
    await eventually(fleet, (ds) => ds.every((d) => healthyOn(d, '1.1.0')), { what: 'every agent healthy on 1.1.0' });
    for (const id of IDS) {
      const events = (await deviceEvents(id)).filter((e) => e.data.version === '1.1.0');
      const verified = events.find((e) => e.kind === 'ota.verified')!;
      const activated = events.find((e) => e.kind === 'ota.activated')!;
      expect(verified.ts).toBeLessThan(window.at);
      expect(activated.ts).toBeGreaterThanOrEqual(window.at);
    }
  }, 90_000);

  it('lets a rollout of higher priority with preempt take over an active one, whose version never activates', async () => {
    const held = {
      id: 'window-digits-120',
      target,
      model: 'digits',
      version: '1.2.0',
      stages: [{ percent: 100 }],
      // A window far away: devices are notified and wait, so the rollout stays active.
      maintenanceWindow: { cron: yearlyCronHalfAYearAway(), durationSec: 3600, timeZone: 'UTC' },
      priority: 1,
    };
    expect((await create(held)).statusCode).toBe(201);
    await eventually(fleet, (ds) => ds.every((d) => d.reported?.models.digits?.target === '1.2.0' && d.reported.models.digits.state === 'verified'), { what: 'every agent waiting with 1.2.0' });
    // The window opens months from now, further off than one Node timer holds: the agents keep waiting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const d of await fleet()) expect(d.reported!.models.digits).toMatchObject({ version: '1.1.0', state: 'verified', target: '1.2.0' });

    const back = { id: 'back-to-100', target, model: 'digits', version: '1.0.0', stages: [{ percent: 100 }], priority: 10, preempt: true };
    expect((await create(back)).statusCode).toBe(201);
    expect(await rollout(held.id)).toMatchObject({ state: 'preempted', reason: 'preempted by back-to-100' });
    await eventually(() => rollout(back.id), (r) => r.state === 'completed', { what: 'pre-empting rollout completed', timeoutMs: 45_000 }).catch(async (err: Error) => {
      // What each device did, so a failure here can be read from the CI log alone.
      const get = async (url: string) => (await t.server.http.inject({ method: 'GET', url, headers: auth(operator) })).json() as unknown;
      const detail = {
        devices: await get(`/v1/rollouts/${back.id}/devices`),
        events: await get(`/v1/rollouts/${back.id}/events`),
        reported: (await fleet()).map((d) => d.reported),
        agentEvents: await Promise.all(IDS.map(async (id) => (await deviceEvents(id)).slice(-12))),
      };
      throw new Error(`${err.message}\n${JSON.stringify(detail)}`);
    });
    const ds = await eventually(fleet, (xs) => xs.every((d) => healthyOn(d, '1.0.0')), { what: 'every agent healthy on 1.0.0' });
    for (const d of ds) expect(d.desired!.models.digits).toMatchObject({ version: '1.0.0', rollout: back.id });
    for (const id of IDS) expect((await deviceEvents(id)).filter((e) => e.kind === 'ota.activated' && e.data.version === '1.2.0')).toEqual([]);
  }, 90_000);
});
