/**
 * pnpm bench:connect [-- --devices N --reps R]
 *
 * Enrolls N devices through the real REST enrollment path, connects each with its own credential
 * through the broker's authentication, subscribes the way the agent does, and measures connect time
 * and the server's memory per connected device. A bare aedes broker with the same N clients is
 * measured in the same run as the peer: the ratio is Flotilla's memory per device over aedes' own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, numberArg, pool } from './bench-kit.ts';
import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';
import { deviceTopic, encodeMessage } from '@flotilla/protocol';

const here = dirname(fileURLToPath(import.meta.url));

const N = numberArg('devices', 1000);
const REPS = numberArg('reps', 3);
const CONCURRENCY = numberArg('concurrency', 100);

interface Mem { rss: number; heapUsed: number; external: number; arrayBuffers: number }
interface Ready { ready: true; http: string | null; mqtt: string; enrollmentToken: string | null; memory: Mem }

function startBroker(kind: 'flotilla' | 'aedes'): Promise<{ child: ChildProcess; info: Ready }> {
  const child = fork(join(here, 'bench-server.ts'), [kind], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, info: m as Ready }));
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
}

function ask(child: ChildProcess): Promise<Mem> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { memory: Mem }).memory));
    child.send({ cmd: 'mem' });
  });
}


async function enrollAll(info: Ready, run: number): Promise<Array<{ id: string; credential: string | null }>> {
  return pool(N, CONCURRENCY, async (i) => {
    const id = `bench-${run}-${i}`;
    if (!info.http) return { id, credential: null };
    const res = await fetch(`${info.http}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: info.enrollmentToken, deviceId: id, enrollmentKey: `bench-key-${run}-${i}`.padEnd(40, 'k') }),
    });
    const body = (await res.json()) as { credential?: string };
    if (!body.credential) throw new Error(`enrollment of ${id} failed: ${JSON.stringify(body)}`);
    return { id, credential: body.credential };
  });
}

function connect(url: string, d: { id: string; credential: string | null }): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    // mqtt.js has no TCP_NODELAY option; without it every QoS 1 round trip waits on delayed ACKs.
    const stream = () => createConnection({ host: hostname, port: Number(port) }).setNoDelay(true);
    const c = new MqttClient(stream, {
      clientId: d.id,
      ...(d.credential ? { username: d.id, password: d.credential } : {}),
      clean: false,
      keepalive: 300,
      reconnectPeriod: 0,
      will: { topic: deviceTopic(d.id, 'status'), payload: encodeMessage('status', { state: 'offline' }).payload, qos: 1, retain: true },
    });
    c.once('connect', async () => {
      await c.subscribeAsync([deviceTopic(d.id, 'desired'), deviceTopic(d.id, 'ack'), deviceTopic(d.id, 'cmd')], { qos: 1 });
      await c.publishAsync(deviceTopic(d.id, 'status'), encodeMessage('status', { state: 'online' }).payload, { qos: 1, retain: true });
      resolve(c);
    });
    c.once('error', reject);
  });
}

async function measure(kind: 'flotilla' | 'aedes', run: number) {
  const { child, info } = await startBroker(kind);
  try {
    const devices = await enrollAll(info, run);
    const before = await ask(child);
    const t0 = performance.now();
    const clients = await pool(N, CONCURRENCY, (i) => connect(info.mqtt, devices[i]!));
    const connectMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    const after = await ask(child);
    for (const c of clients) c.end(true);
    return {
      kind,
      connectMs: Math.round(connectMs),
      connectsPerSec: Math.round((N / connectMs) * 1000),
      rssPerDeviceKB: +((after.rss - before.rss) / N / 1024).toFixed(2),
      heapPerDeviceKB: +((after.heapUsed + after.external - before.heapUsed - before.external) / N / 1024).toFixed(2),
    };
  } finally {
    child.send({ cmd: 'exit' });
  }
}

const runs: Array<Awaited<ReturnType<typeof measure>>> = [];
for (let r = 0; r < REPS; r++) {
  for (const kind of ['flotilla', 'aedes'] as const) {
    const m = await measure(kind, r);
    runs.push(m);
    console.log(JSON.stringify({ rep: r, ...m }));
  }
}
const of = (k: string) => runs.filter((x) => x.kind === k);
const summary = {
  bench: 'connect',
  devices: N,
  reps: REPS,
  concurrency: CONCURRENCY,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  flotilla: {
    connectMs: median(of('flotilla').map((x) => x.connectMs)),
    connectsPerSec: median(of('flotilla').map((x) => x.connectsPerSec)),
    rssPerDeviceKB: median(of('flotilla').map((x) => x.rssPerDeviceKB)),
    heapPerDeviceKB: median(of('flotilla').map((x) => x.heapPerDeviceKB)),
  },
  aedesPeer: {
    connectMs: median(of('aedes').map((x) => x.connectMs)),
    rssPerDeviceKB: median(of('aedes').map((x) => x.rssPerDeviceKB)),
    heapPerDeviceKB: median(of('aedes').map((x) => x.heapPerDeviceKB)),
  },
  runs,
};
const ratio = {
  rssPerDeviceVsAedes: +(summary.flotilla.rssPerDeviceKB / summary.aedesPeer.rssPerDeviceKB).toFixed(2),
  heapPerDeviceVsAedes: +(summary.flotilla.heapPerDeviceKB / summary.aedesPeer.heapPerDeviceKB).toFixed(2),
  targetKBPerDevice: 40,
};
const out = { ...summary, ratio };
const file = join(here, '..', '..', 'bench-results', `connect-${N}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2));
console.log(JSON.stringify({ devices: N, flotilla: summary.flotilla, aedesPeer: summary.aedesPeer, ratio }, null, 2));
console.log(`written to ${file}`);
process.exit(0);
