/**
 * pnpm exec tsx server/bench/broker-memory.ts [--clients N] [--subs S] [--will 0|1] [--reps R] [--out file.json]
 *
 * Server memory per connected device for the MQTT broker alone. Each variant runs in a fresh child
 * process (started with --expose-gc) so its memory is its own; this process is the load generator
 * and connects N authenticated mqtt.js clients, each with a last will on its status topic (unless
 * --will 0) and subscribing to S filters under its own prefix, the way the agent does. Variants, measured in the same run:
 *
 *   net-floor   a TCP server that accepts sockets and does nothing: the floor Node itself costs
 *   aedes-bare  aedes with default options and no policy: the peer
 *   flotilla    FleetBroker: authentication, policy hooks, packet-size guard, session table
 *
 * Reported per client: heapUsed, external+arrayBuffers and RSS growth after a full GC.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MqttClient, connect } from 'mqtt';
import { Aedes } from 'aedes';
import { pino } from 'pino';

const VARIANTS = ['net-floor', 'aedes-bare', 'flotilla'] as const;
type Variant = (typeof VARIANTS)[number];

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
}

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
};

const deviceId = (i: number) => `bench-${i}`;
const secretOf = (i: number) => `secret-${i}`;

// ---------------------------------------------------------------------------------------------
// Child: the broker under measurement.

async function host(variant: Variant, clients: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the broker host with --expose-gc');
  const memory = (): Mem => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers };
  };
  let port: number;
  if (variant === 'net-floor') {
    const server = createServer({ noDelay: true }, () => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  } else if (variant === 'aedes-bare') {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  } else {
    const { FleetBroker } = await import('../src/broker/index.ts');
    // The credential store exists before the baseline: in the server it is the database.
    const secrets = new Map<string, string>();
    for (let i = 0; i < clients; i++) secrets.set(deviceId(i), secretOf(i));
    const broker = await FleetBroker.create({
      auth: { authenticate: (id, secret) => secrets.get(id) === secret.toString() },
      events: { deviceConnected() {}, deviceDisconnected() {}, deviceMessage() {} },
      logger: pino({ level: 'warn' }),
    });
    port = (await broker.listen({ host: '127.0.0.1', tcpPort: 0 })).tcpPort;
  }
  process.send!({ port, memory: memory() });
  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'mem') process.send!({ memory: memory() });
    if (msg.cmd === 'exit') process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: load generator and report.

function startHost(variant: Variant, clients: number): Promise<{ child: ChildProcess; port: number; memory: Mem }> {
  const child = fork(fileURLToPath(import.meta.url), ['--host', variant, '--clients', String(clients)], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, ...(m as { port: number; memory: Mem }) }));
    child.once('exit', (code) => reject(new Error(`${variant} host exited with ${code}`)));
  });
}

function askMemory(child: ChildProcess): Promise<Mem> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { memory: Mem }).memory));
    child.send({ cmd: 'mem' });
  });
}

async function pool(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

async function connectDevices(variant: Variant, port: number, n: number, subs: number, will: boolean): Promise<Array<MqttClient | Socket>> {
  if (variant === 'net-floor') {
    const sockets: Socket[] = [];
    await pool(n, 100, (_i) => new Promise<void>((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve());
      s.once('error', reject);
      sockets.push(s);
    }));
    return sockets;
  }
  const clients: MqttClient[] = [];
  const filters = ['+', 'desired', 'cmd', 'ack'];
  await pool(n, 100, async (i) => {
    const id = deviceId(i);
    const client = connect({
      host: '127.0.0.1',
      port,
      clientId: id,
      username: id,
      password: secretOf(i),
      reconnectPeriod: 0,
      keepalive: 60,
      // The agent leaves a retained "offline" status as its last will.
      ...(will ? { will: { topic: `flt/v1/d/${id}/status`, payload: Buffer.from('{"state":"offline"}'), qos: 1 as const, retain: true } } : {}),
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    for (let s = 0; s < subs; s++) await client.subscribeAsync(`flt/v1/d/${id}/${filters[s % filters.length]}`, { qos: 1 });
  });
  return clients;
}

async function measure(variant: Variant, n: number, subs: number, will: boolean) {
  const host = await startHost(variant, n);
  const before = await askMemory(host.child);
  const started = process.hrtime.bigint();
  const conns = await connectDevices(variant, host.port, n, subs, will);
  const connectMs = Number(process.hrtime.bigint() - started) / 1e6;
  await new Promise((r) => setTimeout(r, 500)); // let the last CONNACK/SUBACK writes finish
  const after = await askMemory(host.child);
  for (const c of conns) {
    if (c instanceof MqttClient) c.end(true);
    else c.destroy();
  }
  host.child.send({ cmd: 'exit' });
  const per = (k: keyof Mem) => Math.round((after[k] - before[k]) / n);
  return {
    variant,
    connectMs: Math.round(connectMs),
    bytesPerClient: { heapUsed: per('heapUsed'), external: per('external'), rss: per('rss') },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const clients = Number(arg('clients', '2000'));
  const subs = Number(arg('subs', '1'));
  const reps = Number(arg('reps', '1'));
  const will = arg('will', '1') !== '0';
  const runs: Awaited<ReturnType<typeof measure>>[] = [];
  for (let r = 0; r < reps; r++) {
    for (const variant of VARIANTS) {
      const run = await measure(variant, clients, subs, will);
      runs.push(run);
      console.error(`${variant.padEnd(10)} rep ${r + 1}: ${JSON.stringify(run.bytesPerClient)} connect ${run.connectMs} ms`);
    }
  }
  const summary = Object.fromEntries(
    VARIANTS.map((v) => {
      const mine = runs.filter((x) => x.variant === v);
      return [v, { heapUsed: median(mine.map((x) => x.bytesPerClient.heapUsed)), rss: median(mine.map((x) => x.bytesPerClient.rss)) }];
    }),
  ) as Record<Variant, { heapUsed: number; rss: number }>;
  const result = {
    bench: 'broker-memory',
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemBytes: totalmem(), node: process.version },
    versions: { aedes: (new Aedes() as unknown as { version: string }).version },
    params: { clients, subscriptionsPerClient: subs, lastWill: will, reps },
    runs,
    medianBytesPerClient: summary,
    ratio: {
      flotillaOverAedesRss: +(summary.flotilla.rss / summary['aedes-bare'].rss).toFixed(3),
      flotillaOverAedesHeap: +(summary.flotilla.heapUsed / summary['aedes-bare'].heapUsed).toFixed(3),
    },
    targetBytesPerClient: 40 * 1024,
  };
  console.log(JSON.stringify(result, null, 2));
  const out = arg('out', '');
  if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
}

if (process.argv.includes('--host')) {
  await host(arg('host', 'flotilla') as Variant, Number(arg('clients', '2000')));
} else {
  await main();
}
