/**
 * pnpm bench:rollout [-- --devices N --reps R]
 *
 * A staged rollout 1% → 10% → 50% → 100% with no bake time over N simulated devices (default
 * 10,000) on loopback. The server is the real one (its own process); each simulated device is a
 * real MQTT session through the broker's authentication that answers every desired state by
 * reporting the new version healthy, as a fast agent would. Measured: from the create request to
 * the rollout completing with every device succeeded on the new version. Anchor: AWS IoT Jobs'
 * fastest rollout rate, 1,000 devices per minute; target: all N within 60 s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, numberArg, pool } from './bench-kit.ts';
import { MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage, type ReportedState } from '@flotilla/protocol';

const here = dirname(fileURLToPath(import.meta.url));

const N = numberArg('devices', 10_000);
const REPS = numberArg('reps', 3);
const CONCURRENCY = numberArg('concurrency', 50);
const MODEL = 'digits';

interface Ready { http: string; mqtt: string; enrollmentToken: string; adminToken: string }

async function startServer(): Promise<{ child: ChildProcess; info: Ready }> {
  const child = fork(join(here, 'bench-server.ts'), ['flotilla'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Ready));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, info };
}


async function api<T>(info: Ready, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${info.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${info.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A simulated device: real credential, real MQTT session, answers desired state with "healthy on that version". */
function simulateDevice(mqttUrl: string, id: string, credential: string, onHealthy: (version: string) => void): Promise<MqttClient> {
  const { hostname, port } = new URL(mqttUrl);
  const client = new MqttClient(() => createConnection({ host: hostname, port: Number(port) }).setNoDelay(true), {
    clientId: id,
    username: id,
    password: credential,
    protocolVersion: 4,
    clean: true,
    keepalive: 600,
    reconnectPeriod: 0,
  });
  const desiredTopic = deviceTopic(id, 'desired');
  client.on('message', (topic, payload) => {
    if (topic !== desiredTopic) return;
    const d = decodeMessage('desired', payload);
    if (!d.ok) return;
    const version = d.message.body.models[MODEL]?.version;
    const models: ReportedState['models'] = version ? { [MODEL]: { version, state: 'healthy', provider: 'cpu' } } : {};
    client.publish(deviceTopic(id, 'reported'), encodeMessage('reported', { appliedGeneration: d.message.body.generation, models }).payload, { qos: 1 });
    if (version) onHealthy(version);
  });
  return new Promise((resolve, reject) => {
    client.once('connect', async () => {
      await client.subscribeAsync(desiredTopic, { qos: 1 });
      resolve(client);
    });
    client.once('error', reject);
  });
}

const { child, info } = await startServer();
const clients: MqttClient[] = [];
try {
  const t0 = performance.now();
  const creds = await pool(N, CONCURRENCY, async (i) => {
    const id = `sim-${i}`;
    const res = await fetch(`${info.http}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: info.enrollmentToken, deviceId: id, enrollmentKey: `sim-key-${i}`.padEnd(40, 'k'), labels: { fleet: 'bench' } }),
    });
    const body = (await res.json()) as { credential?: string };
    if (!body.credential) throw new Error(`enrollment of ${id} failed: ${JSON.stringify(body)}`);
    return { id, credential: body.credential };
  });
  const enrollMs = performance.now() - t0;
  const healthyOn = new Map<string, number>();
  const t1 = performance.now();
  clients.push(...(await pool(N, CONCURRENCY, (i) => simulateDevice(info.mqtt, creds[i]!.id, creds[i]!.credential, (v) => healthyOn.set(v, (healthyOn.get(v) ?? 0) + 1)))));
  const connectMs = performance.now() - t1;
  console.log(JSON.stringify({ phase: 'fleet ready', devices: N, enrollMs: Math.round(enrollMs), connectMs: Math.round(connectMs) }));

  const reps: Array<{ rep: number; version: string; completeMs: number; devicesPerMin: number; succeeded: number; stageMs: number[] }> = [];
  for (let rep = 0; rep < REPS; rep++) {
    const version = `2.0.${rep}`;
    const start = performance.now();
    const created = await api<{ id: string }>(info, 'POST', '/v1/rollouts', {
      name: `bench ${rep}`,
      target: { labels: { fleet: 'bench' } },
      model: MODEL,
      version,
      stages: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }].map((s) => ({ ...s, bakeTimeSec: 0, successThreshold: 100 })),
      rate: { baseRatePerMin: 1_000_000 },
    });
    const stageMs: number[] = [];
    let lastStage = -1;
    let view: { state: string; counts: Record<string, number>; stage: number; createdAt: number; finishedAt: number | null } = { state: 'running', counts: {}, stage: 0, createdAt: 0, finishedAt: null };
    while (view.state === 'running') {
      await new Promise((r) => setTimeout(r, 100));
      view = await api(info, 'GET', `/v1/rollouts/${created.id}`);
      const stage = view.stage;
      if (stage !== lastStage) {
        stageMs.push(Math.round(performance.now() - start));
        lastStage = stage;
      }
      if (performance.now() - start > 600_000) throw new Error('rollout did not complete within 10 minutes');
    }
    // The server's own timestamps: from the rollout's creation to its completion, without polling slack.
    const completeMs = view.finishedAt !== null ? view.finishedAt - view.createdAt : performance.now() - start;
    if (view.state !== 'completed') throw new Error(`rollout ended ${view.state}: ${JSON.stringify(view.counts)}`);
    const r = { rep, version, completeMs: Math.round(completeMs), devicesPerMin: Math.round((N / completeMs) * 60_000), succeeded: view.counts.succeeded ?? 0, stageMs };
    reps.push(r);
    console.log(JSON.stringify(r));
  }
  const med = median(reps.map((r) => r.completeMs));
  const out = {
    bench: 'rollout',
    devices: N,
    stages: '1% → 10% → 50% → 100%, bake 0, success threshold 100%',
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg: loadavg() },
    fleet: { enrollMs: Math.round(enrollMs), connectMs: Math.round(connectMs) },
    reps,
    medianCompleteMs: med,
    medianDevicesPerMin: median(reps.map((r) => r.devicesPerMin)),
    ratio: { vsAwsIotJobs1000PerMin: +(median(reps.map((r) => r.devicesPerMin)) / 1000).toFixed(1), targetMs: 60_000, withinTarget: med <= 60_000 },
  };
  const file = join(here, '..', '..', 'bench-results', `rollout-${N}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(out, null, 2));
  console.log(JSON.stringify({ medianCompleteMs: out.medianCompleteMs, medianDevicesPerMin: out.medianDevicesPerMin, ratio: out.ratio }, null, 2));
  console.log(`written to ${file}`);
} finally {
  for (const c of clients) c.end(true);
  child.send({ cmd: 'exit' });
}
process.exit(0);
