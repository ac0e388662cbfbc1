import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { inferVersion, localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface ReportedModel {
  version: string | null;
  state: string;
  error?: string;
}
interface DeviceView {
  online: boolean;
  reported: { appliedGeneration: number; models: Record<string, ReportedModel> } | null;
  desired: { generation: number } | null;
}

let cards: Map<string, ModelCard>;
const card = (n: string): ModelCard => cards.get(n)!;

beforeAll(async () => {
  cards = await otaBuilds();
}, 120_000);

describe('OTA end to end: real server, agent as a child process', () => {
  let t: TestServer;
  let agentDir: string;
  const agents: AgentProcess[] = [];

  beforeEach(async () => {
    t = await startServer();
    agentDir = mkdtempSync(join(tmpdir(), 'flt-ota-e2e-'));
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'edge-1' } });
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t.close();
    rmSync(agentDir, { recursive: true, force: true });
  });

  const start = (serverUrl = t.http): AgentProcess => {
    const a = spawnTestAgent({ serverUrl, deviceId: 'edge-1', enrollmentToken: ENROLL_TOKEN, dataDir: agentDir });
    agents.push(a);
    return a;
  };
  const device = async (): Promise<DeviceView> => (await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-1', headers: auth(ADMIN_TOKEN) })).json() as DeviceView;
  const want = async (version: string): Promise<number> => {
    const res = await t.server.http.inject({ method: 'PUT', url: '/v1/devices/edge-1/desired', headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version } } } });
    expect(res.statusCode).toBe(200);
    return (res.json() as DeviceView).desired!.generation;
  };
  const settled = (generation: number, check: (m: ReportedModel | undefined) => boolean, what: string) =>
    eventually(device, (d) => (d.reported?.appliedGeneration ?? 0) >= generation && check(d.reported?.models.digits), { what, timeoutMs: 45_000 });
  const apiOf = (a: AgentProcess) => eventually(() => localApiUrl(a.output()), (u) => u !== undefined, { what: 'local API url' }) as Promise<string>;

  it('installs, upgrades, and rolls back on its own from a build that fails self-test and one that fails to load', async () => {
    await publishBuild(t, card('mnist-edge-int8'), 'digits', '1.0.0');
    await publishBuild(t, card('mnist-edge-fp32'), 'digits', '1.1.0');
    await publishBuild(t, card('mnist-edge-int8-bad-golden'), 'digits', '1.2.0');
    await publishBuild(t, card('mnist-edge-int8-unloadable'), 'digits', '1.3.0');
    const agent = start();
    const api = await apiOf(agent);

    await settled(await want('1.0.0'), (m) => m?.version === '1.0.0' && m.state === 'healthy', 'first install healthy');
    expect(await inferVersion(api, 'digits', card('mnist-edge-int8'))).toBe('1.0.0');

    await settled(await want('1.1.0'), (m) => m?.version === '1.1.0' && m.state === 'healthy', 'upgrade healthy');
    expect(await inferVersion(api, 'digits', card('mnist-edge-fp32'))).toBe('1.1.0');

    const bad = await settled(await want('1.2.0'), (m) => m?.state === 'failed', 'self-test failure');
    expect(bad.reported!.models.digits).toMatchObject({ version: '1.1.0', error: 'FLT_OTA_SELFTEST_FAILED' });
    const unloadable = await settled(await want('1.3.0'), (m) => m?.state === 'failed' && m.error !== 'FLT_OTA_SELFTEST_FAILED', 'load failure');
    expect(unloadable.reported!.models.digits).toMatchObject({ version: '1.1.0', error: 'FLT_OTA_LOAD_FAILED' });
    expect(await inferVersion(api, 'digits', card('mnist-edge-fp32'))).toBe('1.1.0');
  });

  it('comes back with exactly one verified model after kill -9 at any moment of an install, and serves from cache with the server down', async () => {
    await publishBuild(t, card('mnist-edge-int8'), 'digits', '1.0.0');
    await publishBuild(t, card('mnist-edge-fp32'), 'digits', '1.1.0');
    let agent = start();
    await settled(await want('1.0.0'), (m) => m?.state === 'healthy', 'first install');
    // Kill at a few points of the next install (manifest, download, load, switch), then restart.
    const versions = ['1.1.0', '1.0.0', '1.1.0'];
    for (const [i, version] of versions.entries()) {
      await want(version);
      await new Promise((r) => setTimeout(r, [30, 150, 400][i]));
      await agent.kill9();
      agent = start();
      const api = await apiOf(agent);
      const served = await eventually(() => inferVersion(api, 'digits', card('mnist-edge-int8')), (v) => v !== null, { what: 'inference after restart' });
      expect(['1.0.0', '1.1.0']).toContain(served);
      // What it reports is what really serves (the version may move on as the install resumes).
      const d = await eventually(device, (x) => ['healthy', 'activated'].includes(x.reported?.models.digits?.state ?? ''), { what: 'a serving model reported' });
      const now = await inferVersion(api, 'digits', card('mnist-edge-int8'));
      expect([served, now]).toContain(d.reported!.models.digits!.version);
    }
    // Finally the server goes away: the agent starts from its cache and serves.
    await agent.kill9();
    await t.close();
    agent = start('http://127.0.0.1:9');
    const api = await apiOf(agent);
    const served = await eventually(() => inferVersion(api, 'digits', card('mnist-edge-int8')), (v) => v !== null, { what: 'offline inference' });
    expect(['1.0.0', '1.1.0']).toContain(served);
    t = await startServer();
  });
});
