import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface Answer {
  version: string;
  cache: string | undefined;
  outputs: string;
}

let cards: Map<string, ModelCard>;

beforeAll(async () => {
  cards = await otaBuilds();
}, 120_000);

describe('result cache end to end: real server, agent as a child process', () => {
  let t: TestServer;
  let agentDir: string;
  let agent: AgentProcess | undefined;

  beforeEach(async () => {
    t = await startServer();
    agentDir = mkdtempSync(join(tmpdir(), 'flt-cache-e2e-'));
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'edge-c' } });
  });
  afterEach(async () => {
    await agent?.kill9();
    agent = undefined;
    await t.close();
    rmSync(agentDir, { recursive: true, force: true });
  });

  const want = async (version: string): Promise<void> => {
    const res = await t.server.http.inject({ method: 'PUT', url: '/v1/devices/edge-c/desired', headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version } } } });
    expect(res.statusCode).toBe(200);
  };

  /** One KServe v2 JSON inference of the card's golden digit: who answered, from the cache or not, and the outputs. */
  async function infer(api: string): Promise<Answer | null> {
    const card = cards.get('mnist-edge-int8')!;
    const inputs = Object.entries(card.golden.inputs).map(([name, tensor]) => ({ name, shape: tensor.shape, datatype: 'FP32', data: tensor.data }));
    try {
      const res = await fetch(`${api}/v2/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
      if (res.status !== 200) return null;
      const body = (await res.json()) as { model_version: string; parameters?: Record<string, unknown>; outputs: unknown };
      return { version: body.model_version, cache: body.parameters?.flotilla_cache as string | undefined, outputs: JSON.stringify(body.outputs) };
    } catch {
      return null;
    }
  }

  it('never serves an answer of the previous version: the same digit asked throughout an upgrade gets each version its own answer', async () => {
    await publishBuild(t, cards.get('mnist-edge-int8')!, 'digits', '1.0.0');
    await publishBuild(t, cards.get('mnist-edge-fp32')!, 'digits', '1.1.0');
    agent = spawnTestAgent({ serverUrl: t.http, deviceId: 'edge-c', enrollmentToken: ENROLL_TOKEN, dataDir: agentDir, env: { FLOTILLA_INFERENCE_CACHE_MAX_BYTES: String(1024 * 1024) } });
    const a = agent;
    const api = (await eventually(() => localApiUrl(a.output()), (u) => u !== undefined, { what: 'local API url' })) as string;
    await want('1.0.0');
    const first = (await eventually(() => infer(api), (r) => r?.version === '1.0.0', { what: 'version 1.0.0 serving', timeoutMs: 45_000 })) as Answer;
    expect(await infer(api)).toEqual({ ...first, cache: 'hit' });

    // Ask the same digit over and over while version 1.1.0 is installed and switched to.
    const answers: Answer[] = [];
    await want('1.1.0');
    for (;;) {
      const r = await infer(api);
      if (r) answers.push(r);
      if (answers.filter((x) => x.version === '1.1.0').length >= 3) break;
      expect(answers.length).toBeLessThan(100_000);
    }
    const v1 = answers.filter((x) => x.version === '1.0.0');
    const v2 = answers.filter((x) => x.version === '1.1.0');
    // The two versions answer this digit differently, so a stale answer would stand out.
    expect(v2[0]!.outputs).not.toBe(first.outputs);
    expect(v2[0]!.cache).toBe('miss');
    expect(v2.slice(1).map((x) => x.cache)).toEqual(['hit', 'hit']);
    expect(new Set(v2.map((x) => x.outputs))).toEqual(new Set([v2[0]!.outputs]));
    expect(new Set(v1.map((x) => x.outputs))).toEqual(new Set([first.outputs]));
    // Versions only move forward: nothing claims 1.0.0 once 1.1.0 answered.
    const firstV2 = answers.findIndex((x) => x.version === '1.1.0');
    expect(answers.slice(firstV2).every((x) => x.version === '1.1.0')).toBe(true);

    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/flotilla_agent_inference_cache_hits_total\{model="digits",version="1\.1\.0"\} 2/);
    expect(metrics).toMatch(/flotilla_agent_inference_cache_hit_ratio\{model="digits",version="1\.1\.0"\} 0\.6666/);
  }, 120_000);
});
