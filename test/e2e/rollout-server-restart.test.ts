import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelPath, type ModelCard } from '@flotilla/modelkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { BUILD_DIR, otaBuilds } from '../helpers/ota-registry.ts';
import { freePort, spawnServer, type ServerProcess, type ServerProcessOptions } from '../helpers/server-process.ts';

const ADMIN = 'flta_e2e-restart-admin-0123456789abcdef';
const ENROLL = 'flte_e2e-restart-enroll-0123456789abc';
const IDS = ['edge-r1', 'edge-r2', 'edge-r3'];

interface DeviceView {
  reported: { appliedGeneration: number; models: Record<string, { version: string | null; state: string }> } | null;
  desired: { generation: number; models: Record<string, { version: string; rollout?: string }> } | null;
}

/**
 * The control server runs as its own process on fixed ports with a fixed data folder, so it can be
 * killed with SIGKILL and started again on the same SQLite file and artifacts, while three real agent
 * daemons stay up and reconnect.
 */
describe('a rollout survives kill -9 of the server mid-stage', () => {
  let root: string;
  let opts: ServerProcessOptions;
  let server: ServerProcess | undefined;
  let cards: Map<string, ModelCard>;
  const agents: AgentProcess[] = [];

  const api = async <T>(method: string, path: string, body?: object | Buffer): Promise<{ status: number; json: T }> => {
    const raw = Buffer.isBuffer(body);
    const res = await fetch(`${server!.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }) },
      ...(body === undefined ? {} : { body: raw ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T };
  };
  const ok = async (method: string, path: string, body?: object | Buffer): Promise<void> => {
    const res = await api(method, path, body);
    if (res.status >= 300 && !(res.status === 409 && path === '/v1/models')) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
  };
  const publish = async (card: ModelCard, version: string): Promise<void> => {
    const base = `/v1/models/digits/versions`;
    await ok('POST', '/v1/models', { name: 'digits' });
    await ok('POST', base, { version, metadata: { inputs: card.inputs, outputs: card.outputs, golden: card.golden } });
    await ok('POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: card.precision, constraints: {} });
    await ok('PUT', `${base}/${version}/variants/cpu/artifact`, readFileSync(modelPath(BUILD_DIR, card.name)));
    await ok('POST', `${base}/${version}/publish`, {});
  };
  const device = async (id: string) => (await api<DeviceView>('GET', `/v1/devices/${id}`)).json;
  const fleet = () => Promise.all(IDS.map(device));
  const healthyOn = (d: DeviceView, version: string) =>
    (d.reported?.appliedGeneration ?? 0) >= (d.desired?.generation ?? 1) && d.reported?.models.digits?.version === version && d.reported.models.digits.state === 'healthy';

  beforeAll(async () => {
    cards = await otaBuilds();
    root = mkdtempSync(join(tmpdir(), 'flt-rollout-restart-'));
    opts = { dataDir: join(root, 'server'), httpPort: await freePort(), mqttPort: await freePort(), adminToken: ADMIN, enrollmentToken: ENROLL };
    server = await spawnServer(opts);
    await publish(cards.get('mnist-edge-int8')!, '1.0.0');
    await publish(cards.get('mnist-edge-fp32')!, '1.1.0');
    // Agents retry the broker quickly, so they are back soon after the restart.
    const agentConfig = join(root, 'agent.json');
    writeFileSync(agentConfig, JSON.stringify({ mqtt: { backoff: { initialMs: 200, maxMs: 1000 } } }));
    for (const id of IDS) {
      await ok('POST', '/v1/devices', { id, labels: { fleet: 'restart' } });
      await ok('PUT', `/v1/devices/${id}/desired`, { models: { digits: { version: '1.0.0' } } });
      agents.push(
        spawnTestAgent({ serverUrl: server.http, deviceId: id, enrollmentToken: ENROLL, dataDir: join(root, id), env: { FLOTILLA_AGENT_CONFIG: agentConfig } }),
      );
    }
    await eventually(fleet, (ds) => ds.every((d) => healthyOn(d, '1.0.0')), { what: 'every agent healthy on 1.0.0', timeoutMs: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('continues from the stored state after a restart and notifies no device twice', async () => {
    const before = new Map((await fleet()).map((d, i) => [IDS[i]!, d.desired!.generation]));
    const spec = {
      id: 'restart-digits-110',
      target: { labels: { fleet: 'restart' } },
      model: 'digits',
      version: '1.1.0',
      stages: [{ count: 1, bakeTimeSec: 6 }, { percent: 100 }],
      perDeviceTimeoutSec: 120,
    };
    expect((await api('POST', '/v1/rollouts', spec)).status).toBe(201);
    type View = { state: string; stage: number; funnel: Array<{ baking: number }>; counts: Record<string, number> };
    // Mid-stage: the canary is healthy on 1.1.0 and baking; the other two wait in stage 1.
    await eventually(async () => (await api<View>('GET', `/v1/rollouts/${spec.id}`)).json, (r) => r.funnel[0]!.baking === 1, { what: 'canary baking', timeoutMs: 45_000 });

    await server!.kill9();
    server = await spawnServer(opts);

    const done = await eventually(async () => (await api<View>('GET', `/v1/rollouts/${spec.id}`)).json, (r) => r.state === 'completed', { what: 'rollout completed after the restart', timeoutMs: 60_000 });
    expect(done.counts).toMatchObject({ succeeded: 3, failed: 0, timedOut: 0, pending: 0, notified: 0 });
    await eventually(fleet, (ds) => ds.every((d) => healthyOn(d, '1.1.0')), { what: 'every agent healthy on 1.1.0' });

    // Exactly one notification and one new desired generation per device, across the crash.
    const events = (await api<{ items: Array<{ kind: string; deviceId: string | null; stage: number | null }> }>('GET', `/v1/rollouts/${spec.id}/events?devices=true&limit=1000`)).json.items;
    for (const id of IDS) {
      expect(events.filter((e) => e.kind === 'device.notified' && e.deviceId === id)).toHaveLength(1);
      expect(events.filter((e) => e.kind === 'device.succeeded' && e.deviceId === id)).toHaveLength(1);
      const d = await device(id);
      expect(d.desired!.generation).toBe(before.get(id)! + 1);
      expect(d.desired!.models.digits).toMatchObject({ version: '1.1.0', rollout: spec.id });
    }
    expect(events.filter((e) => e.kind === 'stage.started').map((e) => e.stage)).toEqual([0, 1]);
  }, 150_000);
});
