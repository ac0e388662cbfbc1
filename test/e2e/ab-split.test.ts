import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAllDigits, splitDigits, type ModelCard } from '@flotilla/modelkit';
import type { AbComparison, AbReport } from '@flotilla/protocol';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, tokenFor, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface ReportedModel {
  version: string | null;
  state: string;
  waiting?: string;
  ab?: AbReport;
}
interface DeviceView {
  reported: { models: Record<string, ReportedModel> } | null;
}

const ID = 'edge-ab';
const PIXELS = 784;
const SHARE = 0.3;
const REQUESTS = 400;
const MIN_REQUESTS = 200;

let cards: Map<string, ModelCard>;
let digits: Float32Array;

beforeAll(async () => {
  cards = await otaBuilds();
  const { test } = splitDigits(loadAllDigits(), 7, 8000);
  digits = test.x.slice(0, 1000 * PIXELS);
}, 120_000);

describe('A/B split end to end: real server, agent as a child process', () => {
  let t: TestServer;
  let operator: string;
  let dataDir: string;
  let agent: AgentProcess;
  let api: string;

  beforeAll(async () => {
    t = await startServer();
    operator = await tokenFor(t, 'operator');
    dataDir = mkdtempSync(join(tmpdir(), 'flt-ab-e2e-'));
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.0.0');
    await publishBuild(t, cards.get('mnist-edge-fp32')!, 'digits', '1.1.0');
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: ID, labels: { fleet: 'ab' } } });
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
  const get = async <T>(url: string): Promise<T> => (await t.server.http.inject({ method: 'GET', url, headers: auth(operator) })).json() as T;

  /** One digit through the agent's local KServe API; the version and arm that answered. */
  async function infer(i: number, headers: Record<string, string> = {}, parameters?: Record<string, string>): Promise<{ version: string; arm: string | undefined }> {
    const r = i % (digits.length / PIXELS);
    const res = await fetch(`${api}/v2/models/digits/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ ...(parameters && { parameters }), inputs: [{ name: 'input', shape: [1, PIXELS], datatype: 'FP32', data: Array.from(digits.subarray(r * PIXELS, (r + 1) * PIXELS)) }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model_version: string; parameters?: { flotilla_ab_arm?: string } };
    return { version: body.model_version, arm: body.parameters?.flotilla_ab_arm };
  }

  it('serves the configured share from the candidate, keeps a sticky caller on one arm, and the server compares both arms', async () => {
    const created = await t.server.http.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: auth(operator),
      payload: {
        id: 'ab-110',
        target: { deviceIds: [ID] },
        model: 'digits',
        version: '1.1.0',
        stages: [{ percent: 100, ab: { share: SHARE, sticky: 'x-caller', minRequests: MIN_REQUESTS, maxErrorRateDelta: 0.05 } }],
        onAbort: 'revert',
        perDeviceTimeoutSec: 300,
      },
    });
    expect(created.statusCode).toBe(201);
    await eventually(device, (d) => d.reported?.models.digits?.waiting === 'ab', { what: '1.1.0 in an A/B split', timeoutMs: 45_000 });

    // Unkeyed requests: drawn at random. The candidate's count must lie within 4 binomial standard deviations.
    let candidate = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const { version, arm } = await infer(i);
      expect(arm).toBe(version === '1.1.0' ? 'candidate' : 'control');
      if (arm === 'candidate') candidate++;
    }
    const sd = Math.sqrt(REQUESTS * SHARE * (1 - SHARE));
    expect(Math.abs(candidate - REQUESTS * SHARE)).toBeLessThanOrEqual(4 * sd);

    // A caller with a sticky key always lands on the same arm.
    const sticky = new Set<string>();
    for (let i = 0; i < 20; i++) sticky.add((await infer(i, { 'x-caller': 'caller-7' })).version);
    expect(sticky.size).toBe(1);
    // The key may also come as a KServe request parameter of the same name.
    const byParameter = new Set<string>();
    for (let i = 0; i < 10; i++) byParameter.add((await infer(i, {}, { 'x-caller': 'caller-7' })).version);
    expect([...byParameter]).toEqual([...sticky]);

    // The device reports its arms; the server pools them per rollout and per model.
    const served = REQUESTS + 30;
    const ab = await eventually(
      () => get<AbComparison>('/v1/rollouts/ab-110/ab'),
      (c) => c.arms.control.requests + c.arms.candidate.requests >= served,
      { what: 'both arms reported', timeoutMs: 15_000 },
    );
    expect(ab).toMatchObject({ model: 'digits', candidate: '1.1.0', level: 0.95 });
    expect(ab.arms.control).toMatchObject({ versions: ['1.0.0'], devices: 1, errors: 0 });
    expect(ab.arms.candidate).toMatchObject({ versions: ['1.1.0'], devices: 1, errors: 0 });
    expect(ab.arms.candidate.requests).toBeGreaterThan(0);
    expect(ab.arms.candidate.meanConfidence.estimate).toBeGreaterThan(0.5);
    expect(ab.difference.errorRate.low).not.toBeNull();
    expect(ab.difference.meanLatencyMs.estimate).not.toBeNull();
    const byModel = await get<AbComparison>('/v1/models/digits/ab');
    expect(byModel.candidate).toBe('1.1.0');
    expect(byModel.arms.candidate.requests).toBeGreaterThanOrEqual(ab.arms.candidate.requests);

    // Past minRequests per arm with no regression the gate passes: the device activates the candidate.
    let i = 0;
    while ((await device()).reported?.models.digits?.version !== '1.1.0' && i < 3000) await infer(i++);
    await eventually(() => get<{ state: string }>('/v1/rollouts/ab-110'), (r) => r.state === 'completed', { what: 'rollout completed', timeoutMs: 30_000 });
    const after = await infer(0);
    expect(after).toEqual({ version: '1.1.0', arm: undefined });
  }, 120_000);
});
