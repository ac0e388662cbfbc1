import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AbArmKpis, AbComparison, ReportedState } from '@flotilla/protocol';
import { DeviceStore } from '../../src/fleet/device-store.ts';
import { ADMIN_TOKEN, auth, startServer, tokenFor, type TestServer } from '../helpers/server.ts';

function arm(version: string, requests: number, errors: number): AbArmKpis {
  const ok = requests - errors;
  return { version, requests, errors, latencyCount: ok, latencySumMs: ok * 2, latencySumSqMs: ok * 4.1, p50Ms: 2, p95Ms: 3, confidenceCount: ok, confidenceSum: ok * 0.9, confidenceSumSq: ok * 0.82, escalations: 1 };
}

describe('GET /v1/models/:name/ab and /v1/rollouts/:id/ab', () => {
  let t: TestServer;
  let viewer: string;

  beforeAll(async () => {
    t = await startServer();
    viewer = await tokenFor(t, 'viewer');
    const now = Date.now();
    // Stored as the device ingest stores a report from an accepted device.
    const devices = new DeviceStore(t.server.db);
    for (const [id, control, candidate] of [
      ['cam-01', arm('1.0.0', 300, 3), arm('1.1.0', 100, 2)],
      ['cam-02', arm('1.0.0', 200, 0), arm('1.1.0', 100, 0)],
    ] as const) {
      await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id } });
      const reported: ReportedState = { appliedGeneration: 0, models: { digits: { version: '1.0.0', state: 'installed', ab: { share: 0.25, since: now, control, candidate } } } };
      devices.setStatus(id, 'accepted', now);
      devices.setReported(id, reported, now);
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it('pools the devices’ latest A/B reports of a model for a viewer', async () => {
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/ab', headers: auth(viewer) });
    expect(res.statusCode).toBe(200);
    const c = res.json() as AbComparison;
    expect(c).toMatchObject({ model: 'digits', candidate: '1.1.0', level: 0.95 });
    expect(c.arms.control).toMatchObject({ versions: ['1.0.0'], devices: 2, requests: 500, errors: 3, escalations: 2 });
    expect(c.arms.candidate).toMatchObject({ versions: ['1.1.0'], devices: 2, requests: 200, errors: 2 });
    expect(c.difference.errorRate.estimate).toBeCloseTo(2 / 200 - 3 / 500, 9);
    expect(c.arms.control.meanLatencyMs.estimate).toBeCloseTo(2, 9);
  });

  it('answers empty arms for a model no device splits, and refuses a bad name or candidate and an unknown rollout with a code', async () => {
    const none = (await t.server.http.inject({ method: 'GET', url: '/v1/models/other/ab', headers: auth(viewer) })).json() as AbComparison;
    expect(none).toMatchObject({ candidate: null, arms: { control: { requests: 0 }, candidate: { requests: 0 } } });
    const other = (await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/ab?candidate=9.9.9', headers: auth(viewer) })).json() as AbComparison;
    expect(other.arms.candidate.requests).toBe(0);
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/ab?candidate=%20bad', headers: auth(viewer) })).statusCode).toBe(400);
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/ab' })).statusCode).toBe(401);
    const missing = await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/no-such-rollout/ab', headers: auth(viewer) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('FLT_ROLLOUT_NOT_FOUND');
  });
});
