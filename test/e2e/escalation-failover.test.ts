import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';
import { cloudModelRepository, spawnPool, type PoolProcess } from '../helpers/pool-process.ts';
import { freePort } from '../helpers/server-process.ts';

const BUDGET_MS = 1000;

interface Answer {
  status: number;
  ms: number;
  by?: string;
  requestId?: string;
  error?: string;
}

/**
 * Failover with real processes: one pool with two pool-worker endpoints, an agent daemon answering
 * a steady stream of requests through its local KServe API. One endpoint is killed with SIGKILL in
 * the middle of the stream, then the other, then both come back.
 */
describe('escalation failover: pool worker endpoints killed under traffic', () => {
  let t: TestServer;
  let agentDir: string;
  let repoDir: string;
  let pools: PoolProcess[] = [];
  let agent: AgentProcess;
  let edge: ModelCard;
  let api: string;
  let ports: number[];

  beforeAll(async () => {
    const cards = await otaBuilds();
    edge = cards.get('mnist-edge-int8')!;
    repoDir = await cloudModelRepository();
    ports = [await freePort(), await freePort()];
    pools = await Promise.all(ports.map((p) => spawnPool(repoDir, p)));

    t = await startServer();
    agentDir = mkdtempSync(join(tmpdir(), 'flt-failover-e2e-'));
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'edge-f', labels: { region: 'lab' } } });
    await publishBuild(t, edge, 'digits', '1.0.0');
    agent = spawnTestAgent({ serverUrl: t.http, deviceId: 'edge-f', enrollmentToken: ENROLL_TOKEN, dataDir: agentDir });
    api = (await eventually(() => localApiUrl(agent.output()), (u) => u !== undefined, { what: 'agent local API url', timeoutMs: 60_000 }))!;

    await admin('PUT', '/v1/devices/edge-f/desired', { models: { digits: { version: '1.0.0' } } });
    await eventually(device, (d) => d.reported?.models.digits?.state === 'healthy', { what: 'edge model installed', timeoutMs: 60_000 });
    await admin('PUT', '/v1/pools/lab-pool', { region: 'lab', endpoints: pools.map((p) => p.url), models: ['mnist-cloud'], weight: 100 });
    await admin('PUT', '/v1/escalation-policies/digits', { mode: 'always-cloud', cloudModel: 'mnist-cloud', budgetMs: BUDGET_MS });
    const wanted = (await device()).desired!.generation;
    await eventually(device, (d) => (d.reported?.appliedGeneration ?? 0) >= wanted, { what: 'escalation policy applied', timeoutMs: 30_000 });
  }, 240_000);

  afterAll(async () => {
    await agent?.kill9();
    await Promise.all(pools.map((p) => p.kill9()));
    await t?.close();
    for (const d of [agentDir, repoDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  async function admin(method: 'PUT' | 'GET', url: string, payload?: object): Promise<Record<string, unknown>> {
    const res = await t.server.http.inject({ method, url, headers: auth(ADMIN_TOKEN), ...(payload ? { payload } : {}) });
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.json() as Record<string, unknown>;
  }
  function device() {
    return admin('GET', '/v1/devices/edge-f') as Promise<{ desired: { generation: number } | null; reported: { appliedGeneration: number; models: Record<string, { state: string }> } | null }>;
  }

  async function infer(): Promise<Answer> {
    const inputs = Object.entries(edge.golden.inputs).map(([name, tensor]) => ({ name, shape: [1, ...tensor.shape.slice(1)], datatype: 'FP32', data: tensor.data.slice(0, 784) }));
    const t0 = performance.now();
    try {
      const res = await fetch(`${api}/v2/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
      const body = (await res.json()) as { parameters?: Record<string, string> };
      return { status: res.status, ms: performance.now() - t0, by: body.parameters?.flotilla_answered_by, requestId: body.parameters?.flotilla_request_id, error: body.parameters?.flotilla_error };
    } catch (err) {
      return { status: 0, ms: performance.now() - t0, error: (err as Error).message };
    }
  }

  /** `concurrency` callers sending back to back until `until` resolves. */
  async function traffic(concurrency: number, until: Promise<unknown>): Promise<Answer[]> {
    const answers: Answer[] = [];
    let done = false;
    void until.then(() => (done = true));
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (!done) answers.push(await infer());
      }),
    );
    return answers;
  }

  it('keeps answering from the cloud with no failed request when one endpoint is killed mid-stream', async () => {
    await eventually(infer, (a) => a.by === 'cloud', { what: 'a first cloud answer', timeoutMs: 30_000 });
    const killed = (async () => {
      await new Promise((r) => setTimeout(r, 1500));
      await pools[0]!.kill9();
      await new Promise((r) => setTimeout(r, 2500));
    })();
    const answers = await traffic(4, killed);
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // Every request, including those in flight on the killed endpoint, was answered by the live one.
    expect(answers.filter((a) => a.by !== 'cloud')).toEqual([]);
  });

  it('answers edge-fallback within the budget with every endpoint down, and the server stores each kept hard example exactly once', async () => {
    await pools[1]!.kill9();
    const answers: Answer[] = [];
    for (let i = 0; i < 12; i++) answers.push(await infer());
    expect(answers.every((a) => a.status === 200 && a.by === 'edge-fallback')).toBe(true);
    // The budget bounds the cloud attempt; the rest is the local run and HTTP on a busy machine.
    expect(answers.filter((a) => a.ms > BUDGET_MS * 3)).toEqual([]);

    const ids = answers.map((a) => a.requestId!);
    expect(new Set(ids).size).toBe(ids.length);
    const stored = await eventually(
      async () => (await admin('GET', '/v1/hard-examples?model=digits&limit=500')) as { items: Array<{ requestId: string; deviceId: string }> },
      (r) => ids.every((id) => r.items.some((e) => e.requestId === id)),
      { what: 'every fallback hard example on the server', timeoutMs: 30_000 },
    );
    for (const id of ids) expect(stored.items.filter((e) => e.requestId === id)).toHaveLength(1);
  });

  it('goes back to the cloud once an endpoint comes back at its address', async () => {
    pools[0] = await spawnPool(repoDir, ports[0]!);
    const back = await eventually(infer, (a) => a.by === 'cloud', { what: 'a cloud answer after recovery', timeoutMs: 30_000 });
    expect(back.status).toBe(200);
  });
});
