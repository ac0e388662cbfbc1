import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { corruptModelBytes, type ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { inferVersion, localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';

interface DeviceEvent {
  id: string;
  seq: number;
  kind: string;
  data: Record<string, unknown>;
}

let cards: Map<string, ModelCard>;
const card = (n: string): ModelCard => cards.get(n)!;

beforeAll(async () => {
  cards = await otaBuilds();
}, 120_000);

describe('OTA events across a server outage', () => {
  const dirs: string[] = [];
  const agents: AgentProcess[] = [];
  let t: TestServer | undefined;

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t?.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('replays the events recorded while the server was down, in order, with no loss and no duplicates', async () => {
    const serverDir = mkdtempSync(join(tmpdir(), 'flt-ota-srv-'));
    const agentDir = mkdtempSync(join(tmpdir(), 'flt-ota-agent-'));
    dirs.push(serverDir, agentDir);
    t = await startServer({}, { dataDir: serverDir });
    const serverUrl = t.http;
    const admin = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) => t!.server.http.inject({ method, url, headers: auth(ADMIN_TOKEN), ...(payload ? { payload } : {}) });
    await admin('POST', '/v1/devices', { id: 'edge-1' });
    await publishBuild(t, card('mnist-edge-int8'), 'digits', '1.0.0');
    await publishBuild(t, card('mnist-edge-fp32'), 'digits', '1.1.0');
    // Fast reconnects so the replay happens soon after the server is back.
    const configPath = join(agentDir, 'agent.json');
    writeFileSync(configPath, JSON.stringify({ mqtt: { backoff: { initialMs: 50, maxMs: 300, multiplier: 2 } } }));
    const start = (): AgentProcess => {
      const a = spawnTestAgent({ serverUrl, deviceId: 'edge-1', enrollmentToken: ENROLL_TOKEN, dataDir: join(agentDir, 'data'), env: { FLOTILLA_AGENT_CONFIG: configPath } });
      agents.push(a);
      return a;
    };
    const events = async (): Promise<DeviceEvent[]> => ((await admin('GET', '/v1/devices/edge-1/events?limit=1000')).json() as { items: DeviceEvent[] }).items;
    const otaEvents = async () => (await events()).filter((e) => e.kind.startsWith('ota.'));

    let agent = start();
    await admin('PUT', '/v1/devices/edge-1/desired', { models: { digits: { version: '1.0.0' } } });
    await eventually(otaEvents, (e) => e.some((x) => x.kind === 'ota.healthy' && x.data.version === '1.0.0'), { what: '1.0.0 healthy event', timeoutMs: 45_000 });
    await admin('PUT', '/v1/devices/edge-1/desired', { models: { digits: { version: '1.1.0' } } });
    await eventually(otaEvents, (e) => e.some((x) => x.kind === 'ota.healthy' && x.data.version === '1.1.0'), { what: '1.1.0 healthy event', timeoutMs: 45_000 });
    const before = await otaEvents();

    // Outage: the server stops (its data stays); the agent restarts offline over a damaged active
    // file, falls back to 1.0.0 and records that in its outbox.
    const httpPort = Number(new URL(t.http).port);
    const mqttPort = Number(new URL(t.mqtt).port);
    await agent.kill9();
    await t.close();
    t = undefined;
    const cacheDir = join(agentDir, 'data', 'models', 'sha256');
    const fp32 = readFileSync(join(cacheDir, readdirSync(cacheDir).find((f) => readFileSync(join(cacheDir, f)).length === card('mnist-edge-fp32').bytes)!));
    const activeFile = readdirSync(cacheDir).find((f) => readFileSync(join(cacheDir, f)).equals(fp32))!;
    writeFileSync(join(cacheDir, activeFile), corruptModelBytes(fp32, 'garble'));
    agent = start();
    const api = await eventually(() => localApiUrl(agent.output()), (u) => u !== undefined, { what: 'local API url' });
    expect(await eventually(() => inferVersion(api!, 'digits', card('mnist-edge-int8')), (v) => v !== null, { what: 'offline inference' })).toBe('1.0.0');

    t = await startServer({ http: { host: '127.0.0.1', port: httpPort }, mqtt: { host: '127.0.0.1', tcpPort: mqttPort, wsPort: null } }, { dataDir: serverDir });
    const after = await eventually(otaEvents, (e) => e.some((x) => x.kind === 'ota.failed' && x.data.phase === 'restart'), { what: 'replayed restart event', timeoutMs: 45_000 });

    const all = await events();
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(new Set(all.map((e) => e.seq)).size).toBe(all.length);
    const seqs = all.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // Everything acknowledged before the outage is still there, once.
    expect(after.slice(0, before.length).map((e) => e.id)).toEqual(before.map((e) => e.id));
    expect(after.filter((e) => e.kind === 'ota.activated').map((e) => e.data.version)).toEqual(['1.0.0', '1.1.0']);
    const failed = after.filter((e) => e.kind === 'ota.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ version: '1.1.0', code: 'FLT_OTA_HASH_MISMATCH' });
    await eventually(
      async () => ((await admin('GET', '/v1/devices/edge-1')).json() as { reported: { models: Record<string, { version: string | null }> } | null }).reported,
      (r) => r?.models.digits?.version === '1.0.0',
      { what: 'reported 1.0.0 after the fallback' },
    );
  });
});
