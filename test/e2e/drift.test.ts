import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAllDigits, splitDigits, type ModelCard } from '@flotilla/modelkit';
import type { DriftReport, DriftSummary } from '@flotilla/protocol';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { buildDriftReference } from '../helpers/drift-reference.ts';
import { BUILD_DIR, localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

const BUILD = 'mnist-edge-int8';
const PIXELS = 784;
/** Held-out digits that are not in the build's eval set (its first 200 test rows): modelkit's MNIST split. */
const TRAFFIC = { first: 200, rows: 400, batch: 100 };

interface DeviceEvent {
  kind: string;
  data: Record<string, unknown>;
}

let card: ModelCard;
let reference: DriftSummary;
let digits: Float32Array;

beforeAll(async () => {
  card = (await otaBuilds()).get(BUILD)!;
  reference = await buildDriftReference(BUILD_DIR, BUILD);
  const { test } = splitDigits(loadAllDigits(), 7, 8000);
  digits = test.x.slice(TRAFFIC.first * PIXELS, (TRAFFIC.first + TRAFFIC.rows) * PIXELS);
}, 120_000);

describe('drift monitoring end to end: real server, two agents as child processes', () => {
  let t: TestServer;
  const dirs: string[] = [];
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    t = await startServer();
    for (const id of ['edge-plain', 'edge-bright']) await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id } });
  });
  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const start = (deviceId: string): AgentProcess => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flt-drift-e2e-'));
    dirs.push(dataDir);
    const a = spawnTestAgent({ serverUrl: t.http, deviceId, enrollmentToken: ENROLL_TOKEN, dataDir, env: { FLOTILLA_DRIFT_INTERVAL_MS: '300' } });
    agents.push(a);
    return a;
  };
  const install = async (deviceId: string): Promise<void> => {
    const res = await t.server.http.inject({ method: 'PUT', url: `/v1/devices/${deviceId}/desired`, headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
    expect(res.statusCode).toBe(200);
    await eventually(
      async () => (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${deviceId}`, headers: auth(ADMIN_TOKEN) })).json() as { reported: { models: Record<string, { state: string }> } | null },
      (d) => d.reported?.models.digits?.state === 'healthy',
      { what: `${deviceId} serving digits@1.0.0`, timeoutMs: 45_000 },
    );
  };
  /** Sends the held-out digits in batches, each pixel through `shift`. */
  const send = async (api: string, shift: (v: number) => number): Promise<void> => {
    for (let r = 0; r < TRAFFIC.rows; r += TRAFFIC.batch) {
      const data = Array.from(digits.subarray(r * PIXELS, (r + TRAFFIC.batch) * PIXELS), shift);
      const res = await fetch(`${api}/v2/models/digits/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [TRAFFIC.batch, PIXELS], datatype: 'FP32', data }] }),
      });
      expect(res.status).toBe(200);
    }
  };
  const events = async (deviceId: string): Promise<DeviceEvent[]> =>
    ((await t.server.http.inject({ method: 'GET', url: `/v1/devices/${deviceId}/events?limit=1000`, headers: auth(ADMIN_TOKEN) })).json() as { items: DeviceEvent[] }).items;
  const report = async (): Promise<DriftReport> => (await t.server.http.inject({ method: 'GET', url: '/v1/models/digits/versions/1.0.0/drift', headers: auth(ADMIN_TOKEN) })).json() as DriftReport;

  it('raises drift.detected for brightened digits and nothing for unshifted held-out digits', async () => {
    await publishBuild(t, card, 'digits', '1.0.0', { metadata: { driftReference: reference } });
    const plain = start('edge-plain');
    const bright = start('edge-bright');
    await Promise.all([install('edge-plain'), install('edge-bright')]);
    const apiOf = (a: AgentProcess) => eventually(() => localApiUrl(a.output()), (u) => u !== undefined, { what: 'local API url' }) as Promise<string>;
    const [plainApi, brightApi] = await Promise.all([apiOf(plain), apiOf(bright)]);

    await send(plainApi, (v) => v);
    // A brightness shift: every pixel 0.5 brighter, clamped to the input range.
    await send(brightApi, (v) => Math.min(1, v + 0.5));

    const detected = await eventually(
      async () => (await events('edge-bright')).filter((e) => e.kind === 'drift.detected'),
      (e) => e.length > 0,
      { what: 'drift.detected for edge-bright', timeoutMs: 30_000 },
    );
    expect(detected).toHaveLength(1);
    expect(detected[0]!.data).toMatchObject({ model: 'digits', version: '1.0.0', level: 'drift', threshold: 0.2 });
    expect(detected[0]!.data.psi as number).toBeGreaterThanOrEqual(0.2);

    // Every row the unshifted device served has reached the server, and it stayed under the threshold.
    const summarized = (evs: DeviceEvent[]) => evs.filter((e) => e.kind === 'drift.summary').reduce((n, e) => n + ((e.data.summary as DriftSummary).rows ?? 0), 0);
    await eventually(async () => summarized(await events('edge-plain')), (n) => n >= TRAFFIC.rows, { what: 'edge-plain summaries', timeoutMs: 30_000 });
    const r = await eventually(report, (x) => x.devices.some((d) => d.deviceId === 'edge-plain' && d.level !== 'insufficient'), { what: 'edge-plain scored' });
    const plainScore = r.devices.find((d) => d.deviceId === 'edge-plain')!;
    expect(plainScore.psi!).toBeLessThan(0.2);
    expect(['ok', 'warn']).toContain(plainScore.level);
    expect(r.devices.find((d) => d.deviceId === 'edge-bright')!.level).toBe('drift');
    expect((await events('edge-plain')).filter((e) => e.kind.startsWith('drift.') && e.kind !== 'drift.summary')).toEqual([]);

    const metrics = await t.server.metrics.registry.metrics();
    expect(metrics).toMatch(/flotilla_drift_events_total\{model="digits",version="1.0.0",kind="detected"\} 1/);
    expect(metrics).toMatch(/flotilla_drift_psi\{model="digits",version="1.0.0",scope="worst-device"\} /);
  });
});
