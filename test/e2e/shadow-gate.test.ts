import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAllDigits, modelPath, splitDigits, type Golden, type ModelCard } from '@flotilla/modelkit';
import type { ShadowReport } from '@flotilla/protocol';
import { InferenceService } from '../../agent/src/inference/service/inference-service.ts';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, tokenFor, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { BUILD_DIR, localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface ReportedModel {
  version: string | null;
  state: string;
  error?: string;
  waiting?: string;
  shadow?: ShadowReport;
}
interface DeviceView {
  reported: { appliedGeneration: number; models: Record<string, ReportedModel> } | null;
}
interface RolloutView {
  state: string;
  counts: Record<string, number>;
}

const ID = 'edge-shadow';
const PIXELS = 784;
const BATCH = 50;
const GATE = { share: 1, minSamples: 300, minAgreement: 0.9 };

let cards: Map<string, ModelCard>;
let digits: Float32Array;

/**
 * Golden data computed from the build itself: a release whose self-test passes although its
 * predictions differ from the serving model's, which only live traffic can show.
 */
async function selfGolden(card: ModelCard): Promise<Golden> {
  const svc = new InferenceService({ warmupRuns: 1 });
  try {
    await svc.load({ model: 'probe', version: '0.0.0', path: modelPath(BUILD_DIR, card.name), format: 'onnx', providers: ['cpu'] });
    const inputs = Object.entries(card.golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32' as const, shape: [...t.shape], data: Float32Array.from(t.data) }));
    const res = await svc.infer('probe', inputs);
    const outputs = Object.fromEntries(res.outputs.map((o) => [o.name, { dtype: 'float32' as const, shape: [...o.shape], data: Array.from(o.data as Float32Array) }]));
    return { inputs: card.golden.inputs, outputs, tolerance: card.golden.tolerance };
  } finally {
    await svc.close();
  }
}

beforeAll(async () => {
  cards = await otaBuilds();
  // Held-out digits beyond the builds' evaluation rows: modelkit's MNIST split.
  const { test } = splitDigits(loadAllDigits(), 7, 8000);
  digits = test.x.slice(200 * PIXELS, 1200 * PIXELS);
}, 120_000);

describe('shadow gate end to end: real server, agent as a child process', () => {
  let t: TestServer;
  let operator: string;
  let dataDir: string;
  let agent: AgentProcess;
  let api: string;

  beforeAll(async () => {
    t = await startServer();
    operator = await tokenFor(t, 'operator');
    dataDir = mkdtempSync(join(tmpdir(), 'flt-shadow-e2e-'));
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.0.0');
    await publishBuild(t, cards.get('mnist-edge-fp32')!, 'digits', '1.1.0');
    const perturbed = cards.get('mnist-edge-int8-bad-golden')!;
    await publishBuild(t, { ...perturbed, golden: await selfGolden(perturbed) }, 'digits', '1.2.0');
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: ID, labels: { fleet: 'shadow' } } });
    agent = spawnTestAgent({ serverUrl: t.http, deviceId: ID, enrollmentToken: ENROLL_TOKEN, dataDir });
    const res = await t.server.http.inject({ method: 'PUT', url: `/v1/devices/${ID}/desired`, headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
    expect(res.statusCode).toBe(200);
    await eventually(device, (d) => d.reported?.models.digits?.state === 'healthy' && d.reported.models.digits.version === '1.0.0', { what: 'serving 1.0.0', timeoutMs: 45_000 });
    api = (await eventually(() => localApiUrl(agent.output()), (u) => u !== undefined, { what: 'local API url' })) as string;
  }, 180_000);

  afterAll(async () => {
    await agent?.kill9();
    await t?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function device(): Promise<DeviceView> {
    return (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${ID}`, headers: auth(ADMIN_TOKEN) })).json() as DeviceView;
  }
  const rollout = async (id: string): Promise<RolloutView> => (await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${id}`, headers: auth(operator) })).json() as RolloutView;

  /** Sends held-out digits in batches until `done` says the gate decided; returns the versions that answered. */
  async function driveTraffic(done: () => Promise<boolean>): Promise<Set<string>> {
    const answeredBy = new Set<string>();
    for (let round = 0; round < 200 && !(await done()); round++) {
      const r = (round * BATCH) % (digits.length / PIXELS);
      const data = Array.from(digits.subarray(r * PIXELS, (r + BATCH) * PIXELS));
      const res = await fetch(`${api}/v2/models/digits/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [BATCH, PIXELS], datatype: 'FP32', data }] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { model_version: string };
      answeredBy.add(body.model_version);
    }
    return answeredBy;
  }

  const spec = (id: string, version: string) => ({
    id,
    target: { deviceIds: [ID] },
    model: 'digits',
    version,
    stages: [{ percent: 100, shadow: GATE }],
    abortRules: [{ failureType: 'failed', thresholdPercent: 1, minExecuted: 1 }],
    onAbort: 'revert',
    perDeviceTimeoutSec: 300,
  });

  interface DeviceEvent {
    kind: string;
    data: { version?: string; code?: string; samples?: number; agreement?: number };
  }
  const deviceEvents = async (): Promise<DeviceEvent[]> =>
    ((await t.server.http.inject({ method: 'GET', url: `/v1/devices/${ID}/events?limit=1000`, headers: auth(ADMIN_TOKEN) })).json() as { items: DeviceEvent[] }).items;

  it('stops a candidate that disagrees with the active model on live traffic before it is activated', async () => {
    const created = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec('shadow-120', '1.2.0') });
    expect(created.statusCode).toBe(201);
    await eventually(device, (d) => d.reported?.models.digits?.waiting === 'shadow', { what: '1.2.0 held in shadow', timeoutMs: 45_000 });
    // The refusal is reported, then the rollout's revert moves the device on: the durable events keep it.
    const refused = async () => (await deviceEvents()).find((e) => e.kind === 'ota.failed' && e.data.version === '1.2.0');
    const answeredBy = await driveTraffic(async () => (await refused()) !== undefined);
    const failed = (await eventually(refused, (e) => e !== undefined, { what: 'shadow gate refused 1.2.0' }))!;
    expect(failed.data).toMatchObject({ code: 'FLT_OTA_SHADOW_DISAGREED' });
    expect(failed.data.samples).toBeGreaterThanOrEqual(GATE.minSamples);
    expect(failed.data.agreement).toBeLessThan(GATE.minAgreement);
    expect([...answeredBy]).toEqual(['1.0.0']);
    expect((await deviceEvents()).filter((e) => e.kind === 'ota.activated' && e.data.version === '1.2.0')).toEqual([]);
    await eventually(() => rollout('shadow-120'), (r) => r.state === 'reverted', { what: 'rollout reverted', timeoutMs: 30_000 });
    const rolled = (await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/shadow-120/events?devices=true', headers: auth(operator) })).json() as { items: Array<{ kind: string; details: { error?: string } | null }> };
    expect(rolled.items.find((e) => e.kind === 'device.failed')?.details).toMatchObject({ error: 'FLT_OTA_SHADOW_DISAGREED' });
    const d = await eventually(device, (x) => x.reported?.models.digits?.state === 'healthy', { what: 'still healthy on 1.0.0' });
    expect(d.reported!.models.digits!.version).toBe('1.0.0');
  }, 150_000);

  it('activates a candidate that agrees with the active model once the shadow sample is complete', async () => {
    const created = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec('shadow-110', '1.1.0') });
    expect(created.statusCode).toBe(201);
    await eventually(device, (d) => d.reported?.models.digits?.waiting === 'shadow', { what: '1.1.0 held in shadow', timeoutMs: 45_000 });
    const answeredBy = await driveTraffic(async () => (await device()).reported?.models.digits?.version === '1.1.0');
    // The answers of the hold came from 1.0.0; the last ones may already come from 1.1.0, after the switch.
    expect(answeredBy).toContain('1.0.0');
    await eventually(() => rollout('shadow-110'), (r) => r.state === 'completed', { what: 'rollout completed', timeoutMs: 45_000 });
    expect((await device()).reported!.models.digits).toMatchObject({ version: '1.1.0', state: 'healthy' });
  }, 150_000);
});
