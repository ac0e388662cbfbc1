import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import type { HardExampleView } from '@flotilla/protocol';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';
import { cloudModelRepository, spawnPool, type PoolProcess } from '../helpers/pool-process.ts';

interface InferAnswer {
  model_version?: string;
  parameters?: Record<string, unknown>;
  outputs: Array<{ name: string; data: number[] }>;
}

/**
 * The whole edge-to-cloud path with real processes: the server sets a pool and a policy, the
 * agent daemon receives them in its desired state, and its local KServe API answers through the
 * escalator — from the pool worker while it runs, from the edge model once it is gone.
 */
describe('escalation end to end: server, pool worker and agent as real processes', () => {
  let t: TestServer;
  let agentDir: string;
  let repoDir: string;
  let pool: PoolProcess;
  let agent: AgentProcess;
  let edge: ModelCard;

  beforeAll(async () => {
    const cards = await otaBuilds();
    edge = cards.get('mnist-edge-int8')!;
    repoDir = await cloudModelRepository();
    pool = await spawnPool(repoDir);

    t = await startServer();
    agentDir = mkdtempSync(join(tmpdir(), 'flt-esc-e2e-'));
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'edge-1', labels: { region: 'lab' } } });
    await publishBuild(t, edge, 'digits', '1.0.0');
    agent = spawnTestAgent({ serverUrl: t.http, deviceId: 'edge-1', enrollmentToken: ENROLL_TOKEN, dataDir: agentDir });
  }, 180_000);

  afterAll(async () => {
    await agent?.kill9();
    await pool?.kill9();
    await t?.close();
    for (const d of [agentDir, repoDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  const admin = async (method: 'PUT' | 'GET', url: string, payload?: object) => {
    const res = await t.server.http.inject({ method, url, headers: auth(ADMIN_TOKEN), ...(payload ? { payload } : {}) });
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.json() as Record<string, unknown>;
  };
  const device = () => admin('GET', '/v1/devices/edge-1') as Promise<{ desired: { generation: number } | null; reported: { appliedGeneration: number; models: Record<string, { version: string | null; state: string }> } | null }>;
  /** One request of `rows` digits (the golden digits over and over). */
  const infer = async (api: string, rows = 1): Promise<InferAnswer> => {
    const inputs = Object.entries(edge.golden.inputs).map(([name, tensor]) => ({ name, shape: [rows, 784], datatype: 'FP32', data: digits(tensor.data, rows) }));
    const res = await fetch(`${api}/v2/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
    expect(res.status).toBe(200);
    return (await res.json()) as InferAnswer;
  };

  const digits = (golden: ArrayLike<number>, rows: number): number[] => Array.from({ length: rows * 784 }, (_, i) => golden[i % golden.length]!);

  it('answers from the cloud pool while it is reachable, and from the edge model marked edge-fallback once it is not, keeping the hard example (a large input uploaded on its own)', async () => {
    const poolUrl = pool.url;
    const api = (await eventually(() => localApiUrl(agent.output()), (u) => u !== undefined, { what: 'agent local API url', timeoutMs: 60_000 }))!;

    await admin('PUT', '/v1/devices/edge-1/desired', { models: { digits: { version: '1.0.0' } } });
    await eventually(device, (d) => d.reported?.models.digits?.state === 'healthy', { what: 'edge model installed', timeoutMs: 60_000 });

    await admin('PUT', '/v1/pools/lab-pool', { region: 'lab', endpoints: [poolUrl], models: ['mnist-cloud'], weight: 100 });
    await admin('PUT', '/v1/escalation-policies/digits', { mode: 'always-cloud', cloudModel: 'mnist-cloud', budgetMs: 1000 });
    const wanted = (await device()).desired!.generation;
    await eventually(device, (d) => (d.reported?.appliedGeneration ?? 0) >= wanted, { what: 'escalation policy applied', timeoutMs: 30_000 });

    const cloudAnswer = await eventually(() => infer(api), (a) => a.parameters?.flotilla_answered_by === 'cloud', { what: 'an answer from the pool', timeoutMs: 30_000 });
    expect(cloudAnswer.parameters).toMatchObject({ flotilla_answered_by: 'cloud', flotilla_pool: 'lab-pool' });
    expect(cloudAnswer.outputs[0]!.data).toHaveLength(10);

    await pool.kill9();
    const fallback = await infer(api);
    expect(fallback.parameters).toMatchObject({ flotilla_answered_by: 'edge-fallback' });
    expect(fallback.model_version).toBe('1.0.0');

    const exported = await eventually(
      () => admin('GET', '/v1/hard-examples?model=digits') as Promise<{ items: Array<{ deviceId: string; reason: unknown }> }>,
      (r) => r.items.some((e) => e.deviceId === 'edge-1'),
      { what: 'the hard example stored on the server', timeoutMs: 30_000 },
    );
    expect(exported.items.length).toBeGreaterThan(0);

    // A batch of 64 digits is 200,704 bytes of input, over the 176 KiB an MQTT event carries: the
    // daemon spools it and uploads it over HTTP, and the export joins it to its example whole.
    const large = await infer(api, 64);
    expect(large.parameters).toMatchObject({ flotilla_answered_by: 'edge-fallback' });
    expect(large.outputs[0]!.data).toHaveLength(64 * 10);
    const requestId = large.parameters!.flotilla_request_id as string;
    const joined = await eventually(
      () => admin('GET', '/v1/hard-examples?model=digits') as Promise<{ items: HardExampleView[] }>,
      (r) => r.items.some((e) => e.requestId === requestId && e.inputUpload?.arrived === true),
      { what: 'the large hard example exported with its uploaded input', timeoutMs: 30_000 },
    );
    const item = joined.items.find((e) => e.requestId === requestId)!;
    expect(item).toMatchObject({ deviceId: 'edge-1', answeredBy: 'edge-fallback', inputOmittedBytes: null, input: [{ name: 'input', datatype: 'FP32', shape: [64, 784] }] });
    const sent = Float32Array.from(digits(Object.values(edge.golden.inputs)[0]!.data, 64));
    expect(Buffer.from(item.input[0]!.b64!, 'base64').equals(Buffer.from(sent.buffer))).toBe(true);
    // Uploaded inputs leave the device's spool; the daemon's shutdown (uploader included) is clean.
    await eventually(() => readdirSync(join(agentDir, 'hard-example-inputs')), (files) => files.length === 0, { what: 'the spool emptied' });
    expect(await agent.stop()).toBe(0);
  });
});
