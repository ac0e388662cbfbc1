import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
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
  const infer = async (api: string): Promise<InferAnswer> => {
    const inputs = Object.entries(edge.golden.inputs).map(([name, tensor]) => ({ name, shape: [1, ...tensor.shape.slice(1)], datatype: 'FP32', data: tensor.data.slice(0, 784) }));
    const res = await fetch(`${api}/v2/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
    expect(res.status).toBe(200);
    return (await res.json()) as InferAnswer;
  };

  it('answers from the cloud pool while it is reachable, and from the edge model marked edge-fallback once it is not, keeping the hard example', async () => {
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
  });
});
