import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DRIFT_SUMMARY_EVENT, encodeMessage, type DriftReport, type DriftSummary } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, startServer, type TestServer } from '../helpers/server.ts';

const reference: DriftSummary = {
  rows: 200,
  input: { lo: 0, hi: 1, elements: 2000, mean: 0.2, std: 0.3, hist: [1500, 50, 50, 50, 50, 50, 50, 50, 50, 100] },
  confidence: [0, 0, 0, 0, 2, 4, 6, 8, 20, 160],
  classes: [20, 20, 20, 20, 20, 20, 20, 20, 20, 20],
};
const shifted: DriftSummary = {
  rows: 150,
  input: { lo: 0, hi: 1, elements: 1500, mean: 0.7, std: 0.3, hist: [0, 0, 0, 0, 0, 1000, 50, 50, 50, 350] },
  confidence: [0, 0, 10, 30, 40, 30, 20, 10, 5, 5],
  classes: [0, 0, 0, 0, 0, 0, 0, 0, 150, 0],
};
const like = (s: DriftSummary, k: number): DriftSummary => ({
  rows: s.rows * k,
  input: { ...s.input, elements: s.input.elements * k, hist: s.input.hist.map((c) => c * k) },
  confidence: s.confidence.map((c) => c * k),
  classes: s.classes.map((c) => c * k),
});

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not reached');
}

describe('drift tracking on the server', () => {
  let t: TestServer;
  let dataDir: string;
  let seq = 0;
  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'flt-drift-'));
    t = await startServer({ drift: { threshold: 0.2, warn: 0.1, minRows: 100 } }, { dataDir });
    const admin = auth(ADMIN_TOKEN);
    for (const id of ['edge-1', 'edge-2']) await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: admin, payload: { id } });
    await t.server.http.inject({ method: 'POST', url: '/v1/models', headers: admin, payload: { name: 'digits' } });
    const metadata = { inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 10] }], outputs: [{ name: 'p', dtype: 'float32', shape: [-1, 10] }], driftReference: reference };
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/models/digits/versions', headers: admin, payload: { version: '1.0.0', metadata } });
    expect(res.statusCode).toBe(201);
  });
  afterEach(async () => {
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const send = (deviceId: string, summary: DriftSummary, version = '1.0.0'): string => {
    const ev = encodeMessage('events', { kind: DRIFT_SUMMARY_EVENT, seq: ++seq, data: { model: 'digits', version, windowStart: 1, windowEnd: 2, summary } });
    t.server.ingest.message(deviceId, 'events', ev.payload);
    return ev.payload.toString();
  };
  const report = async (): Promise<DriftReport> => (await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/versions/1.0.0/drift', headers: auth(ADMIN_TOKEN) })).json() as DriftReport;
  const events = async (deviceId: string): Promise<Array<{ kind: string; data: Record<string, unknown> }>> =>
    ((await t.server.http.inject({ method: 'GET', url: `/v1/devices/${deviceId}/events`, headers: auth(ADMIN_TOKEN) })).json() as { items: Array<{ kind: string; data: Record<string, unknown> }> }).items;
  const driftEvents = async (deviceId: string) => (await events(deviceId)).filter((e) => e.kind.startsWith('drift.') && e.kind !== DRIFT_SUMMARY_EVENT);

  it('scores traffic like the reference as ok and raises one drift.detected for a device whose traffic shifted, visible in the API and metrics', async () => {
    send('edge-1', like(reference, 1));
    send('edge-2', reference);
    send('edge-2', shifted);
    const r = await until(report, (x) => x.devices.length === 2 && x.devices.every((d) => d.level !== 'insufficient'));
    expect(r.hasReference).toBe(true);
    const byId = Object.fromEntries(r.devices.map((d) => [d.deviceId, d]));
    expect(byId['edge-1']).toMatchObject({ level: 'ok', psi: 0, rows: 200 });
    // The newest windows reaching minRows: the shifted one alone (150 rows).
    expect(byId['edge-2']).toMatchObject({ level: 'drift', rows: 150 });
    expect(byId['edge-2']!.input!).toBeGreaterThan(0.2);
    expect(r.fleet!.rows).toBe(350);

    const detected = await until(() => driftEvents('edge-2'), (e) => e.length > 0);
    expect(detected).toHaveLength(1);
    expect(detected[0]).toMatchObject({ kind: 'drift.detected', data: { model: 'digits', version: '1.0.0', level: 'drift', threshold: 0.2 } });
    expect(await driftEvents('edge-1')).toEqual([]);

    // Still drifting: no second event. Then back to normal: one drift.cleared.
    send('edge-2', shifted);
    await until(report, (x) => x.devices.find((d) => d.deviceId === 'edge-2')!.rows === 150);
    send('edge-2', like(reference, 1));
    const cleared = await until(() => driftEvents('edge-2'), (e) => e.length === 2);
    expect(cleared.map((e) => e.kind)).toEqual(['drift.detected', 'drift.cleared']);

    const metrics = await t.server.metrics.registry.metrics();
    expect(metrics).toMatch(/flotilla_drift_psi\{model="digits",version="1.0.0",scope="fleet"\} \d/);
    expect(metrics).toMatch(/flotilla_drift_events_total\{model="digits",version="1.0.0",kind="detected"\} 1/);
  });

  it('counts a resent summary once, refuses an invalid one into the event log, and keeps a raised event across a restart', async () => {
    const payload = encodeMessage('events', { kind: DRIFT_SUMMARY_EVENT, seq: 1, data: { model: 'digits', version: '1.0.0', windowStart: 1, windowEnd: 2, summary: shifted } }).payload;
    t.server.ingest.message('edge-1', 'events', payload);
    t.server.ingest.message('edge-1', 'events', payload);
    t.server.ingest.message('edge-1', 'events', encodeMessage('events', { kind: DRIFT_SUMMARY_EVENT, seq: 2, data: { model: 'digits' } }).payload);
    await until(() => driftEvents('edge-1'), (e) => e.length === 1);
    expect((await report()).devices[0]).toMatchObject({ deviceId: 'edge-1', rows: 150, level: 'drift' });
    const invalid = (await events('edge-1')).find((e) => e.kind === DRIFT_SUMMARY_EVENT && e.data.code !== undefined);
    expect(invalid?.data.code).toBe('FLT_DRIFT_SUMMARY_INVALID');

    await t.close();
    t = await startServer({ drift: { threshold: 0.2, warn: 0.1, minRows: 100 } }, { dataDir });
    expect((await report()).devices[0]).toMatchObject({ deviceId: 'edge-1', rows: 150, level: 'drift' });
    send('edge-1', shifted);
    await until(report, (x) => x.devices[0]!.rows === 150 && x.devices[0]!.updatedAt > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect((await driftEvents('edge-1')).map((e) => e.kind)).toEqual(['drift.detected']);
  });

  it('reports a version without a reference as unscored, and 404 for an unknown version', async () => {
    const admin = auth(ADMIN_TOKEN);
    await t.server.http.inject({ method: 'POST', url: '/v1/models/digits/versions', headers: admin, payload: { version: '2.0.0', metadata: { inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 10] }], outputs: [{ name: 'p', dtype: 'float32', shape: [-1, 10] }] } } });
    send('edge-1', shifted, '2.0.0');
    const r = await until(
      async () => (await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/versions/2.0.0/drift', headers: admin })).json() as DriftReport,
      (x) => x.devices.length === 1,
    );
    expect(r).toMatchObject({ hasReference: false, fleet: { level: 'insufficient', psi: null } });
    expect(await driftEvents('edge-1')).toEqual([]);
    const missing = await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/versions/9.9.9/drift', headers: admin });
    expect(missing.statusCode).toBe(404);
  });
});
