import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, startServer, tokenFor, type TestServer } from '../helpers/server.ts';
import { simulatedFleet, until } from './simulated-device.ts';
import { publishStubReleases } from './stub-release.ts';

describe('/v1/rollouts against a running server with simulated devices', () => {
  let t: TestServer;
  let operator: string;
  let viewer: string;
  const clients: MqttClient[] = [];
  const ids = ['cam-01', 'cam-02', 'cam-03', 'cam-04', 'cam-05', 'cam-06'];

  beforeAll(async () => {
    t = await startServer();
    operator = await tokenFor(t, 'operator');
    viewer = await tokenFor(t, 'viewer');
    await publishStubReleases(t, 'digits', ['2.0.0', '3.0.0', '4.0.0']);
    clients.push(...(await simulatedFleet(t, ids, { site: 'lyon' })));
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t?.close();
  });

  const spec = {
    id: 'lyon-digits-2',
    target: { labels: { site: 'lyon' } },
    model: 'digits',
    version: '2.0.0',
    stages: [{ count: 1 }, { percent: 50 }, { percent: 100 }],
    abortRules: [{ failureType: 'any', thresholdPercent: 20, minExecuted: 3 }],
  };

  it('previews cohorts for a viewer without starting anything', async () => {
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts/dry-run', headers: auth(viewer), payload: spec });
    expect(res.statusCode).toBe(200);
    const dry = res.json();
    expect(dry).toMatchObject({ id: 'lyon-digits-2', targetCount: 6, conflicts: [] });
    expect(dry.stages.map((s: { size: number }) => s.size)).toEqual([1, 2, 3]);
    expect((await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(viewer), payload: spec })).json().code).toBe('FLT_FORBIDDEN');
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/lyon-digits-2', headers: auth(viewer) })).json().code).toBe('FLT_ROLLOUT_NOT_FOUND');
  });

  it('refuses inconsistent or out-of-range specs and unknown models or versions with a code, at create and in the dry run', async () => {
    const both = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: { ...spec, stages: [{ count: 1, percent: 10 }] } });
    expect(both.statusCode).toBe(400);
    expect(both.json().code).toBe('FLT_ROLLOUT_SPEC_INVALID');
    const unknownField = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: { ...spec, speed: 'fast' } });
    expect(unknownField.json().code).toBe('FLT_ROLLOUT_SPEC_INVALID');
    const outOfRange = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: { ...spec, healthGate: { maxLatencyRatio: 0.5 } } });
    expect([outOfRange.statusCode, outOfRange.json().code, outOfRange.json().details.field]).toEqual([400, 'FLT_ROLLOUT_SPEC_INVALID', '/healthGate/maxLatencyRatio']);
    for (const url of ['/v1/rollouts', '/v1/rollouts/dry-run']) {
      const unknownModel = await t.server.http.inject({ method: 'POST', url, headers: auth(operator), payload: { ...spec, model: 'letters' } });
      expect([unknownModel.statusCode, unknownModel.json().code]).toEqual([422, 'FLT_ROLLOUT_UNKNOWN_MODEL']);
      const unknownVersion = await t.server.http.inject({ method: 'POST', url, headers: auth(operator), payload: { ...spec, version: '9.9.9' } });
      expect([unknownVersion.statusCode, unknownVersion.json().code]).toEqual([422, 'FLT_ROLLOUT_UNKNOWN_VERSION']);
    }
    const badWindow = await t.server.http.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: auth(operator),
      payload: { ...spec, maintenanceWindow: { cron: '0 2 * * *', durationSec: 3600, timeZone: 'Nowhere/Town' } },
    });
    expect(badWindow.json().code).toBe('FLT_ROLLOUT_WINDOW_INVALID');
  });

  it('runs a small staged rollout end to end until every device is healthy on the new version', async () => {
    const created = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'lyon-digits-2', state: 'running', targetCount: 6 });

    const get = async () => (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/lyon-digits-2', headers: auth(viewer) })).json();
    const done = await until(get, (r) => r.state === 'completed');
    expect(done).toMatchObject({ state: 'completed', stage: 2, counts: { succeeded: 6 } });
    expect(done.funnel.map((f: { size: number; counts: { succeeded: number } }) => [f.size, f.counts.succeeded])).toEqual([[1, 1], [2, 2], [3, 3]]);

    for (const id of ids) {
      const d = (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${id}`, headers: auth(viewer) })).json();
      expect(d.reported.models.digits).toEqual({ version: '2.0.0', state: 'healthy' });
      expect(d.inSync).toBe(true);
    }
    const events = (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/lyon-digits-2/events', headers: auth(viewer) })).json();
    expect(events.items.map((e: { kind: string }) => e.kind)).toEqual(['created', 'stage.started', 'stage.completed', 'stage.started', 'stage.completed', 'stage.started', 'stage.completed', 'completed']);
    const devices = (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/lyon-digits-2/devices?state=succeeded&limit=4', headers: auth(viewer) })).json();
    expect(devices.items).toHaveLength(4);
    expect(devices.nextCursor).not.toBeNull();

    const metrics = (await t.server.http.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/flotilla_rollout_notifications_total 6/);
  });

  it('audits commands and answers a command that does not fit the state with FLT_ROLLOUT_STATE_CONFLICT', async () => {
    const paused = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts/lyon-digits-2/pause', headers: auth(operator) });
    expect(paused.statusCode).toBe(409);
    expect(paused.json().code).toBe('FLT_ROLLOUT_STATE_CONFLICT');
    const next = await t.server.http.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: auth(operator),
      payload: { ...spec, id: 'lyon-digits-3', version: '3.0.0', stages: [{ count: 1, requireApproval: false }, { percent: 100, requireApproval: true }] },
    });
    expect(next.statusCode).toBe(201);
    const conflict = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: { ...spec, id: 'lyon-digits-4', version: '4.0.0' } });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'FLT_ROLLOUT_CONFLICT', details: { rolloutId: 'lyon-digits-3' } });
    const cancelled = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts/lyon-digits-3/cancel', headers: auth(operator), payload: { reason: 'wrong build' } });
    expect(cancelled.json()).toMatchObject({ state: 'cancelled', reason: 'wrong build' });
    const list = (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts?limit=1', headers: auth(viewer) })).json();
    expect(list.items.map((r: { id: string }) => r.id)).toEqual(['lyon-digits-3']);
    const page2 = (await t.server.http.inject({ method: 'GET', url: `/v1/rollouts?limit=1&cursor=${list.nextCursor}`, headers: auth(viewer) })).json();
    expect(page2.items.map((r: { id: string }) => r.id)).toEqual(['lyon-digits-2']);
    const audit = (await t.server.http.inject({ method: 'GET', url: '/v1/audit?target=lyon-digits-3', headers: auth(ADMIN_TOKEN) })).json();
    expect(audit.items.map((a: { action: string }) => a.action).sort()).toEqual(['rollout.cancel', 'rollout.create']);
  });
});
