/**
 * pnpm bench:rollout [-- --devices N --reps R]
 *
 * A staged rollout 1% → 10% → 50% → 100% with no bake time over N simulated devices (default
 * 10,000) on loopback. The server is the real one (its own process, bench-server.ts). Before any
 * timing, a real release of model `digits` is published through the registry REST API for every
 * version the run uses (a few KB of random bytes as the one `cpu` variant, server-signed).
 *
 * Each simulated device is a real MQTT session through the broker's authentication. On a desired
 * state naming a new version it does what the agent's install path does minus the inference
 * runtime: fetches `GET /v1/device/releases/digits/<v>` with its own credential, verifies the
 * signed manifest against the keys pinned from `GET /v1/keys` (signature, expiry, rollback
 * counter, model/version match), picks the variant for its inventory, downloads
 * `GET /v1/artifacts/<sha256>` and checks length and sha256 against the manifest as the bytes
 * arrive, then reports the version healthy. Every device verifies and downloads for itself; the
 * only thing shared is the pinned key set (immutable) and the keep-alive HTTP connection pool.
 *
 * Per repetition, in the same run and over the same connected devices:
 *   - floor:   one `PUT /v1/devices/:id/desired` per device for a fresh version (bounded
 *              concurrency), no rollout logic; time until every device reported it healthy;
 *   - rollout: one `POST /v1/rollouts`; time until every device reported the next version healthy
 *              (same clock as the floor), plus the server's own createdAt → finishedAt, each
 *              stage's start/complete times from the rollout's events, and the server's peak
 *              memory sampled over IPC (no forced GC) while it runs.
 * Anchor: AWS IoT Jobs' fastest rollout rate, 1,000 devices per minute; target: all N within 60 s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { median, numberArg, pool } from './bench-kit.ts';
import { MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage, type ReportedState } from '@flotilla/protocol';
import { createArtifactVerifier, matchVariant, TrustedKeys, verifyRelease, type HardwareInventory } from '@flotilla/release';

const here = dirname(fileURLToPath(import.meta.url));

const N = numberArg('devices', 10_000);
const REPS = numberArg('reps', 3);
const CONCURRENCY = numberArg('concurrency', 50);
/** Keep-alive connections the simulated devices share towards the server's HTTP port. */
const HTTP_CONNECTIONS = numberArg('connections', 64);
const ARTIFACT_BYTES = numberArg('artifact-bytes', 4096);
const MODEL = 'digits';
const INVENTORY: HardwareInventory = { arch: 'x64', gpu: null, executionProviders: ['cpu'] };

interface Ready { http: string; mqtt: string; enrollmentToken: string; adminToken: string }
interface Memory { rss: number; heapUsed: number; external: number; arrayBuffers: number }

async function startServer(): Promise<{ child: ChildProcess; info: Ready }> {
  const child = fork(join(here, 'bench-server.ts'), ['flotilla'], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Ready));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, info };
}

/** Samples the server's memory (no GC) every `everyMs` until stopped; returns the peaks. */
function memorySampler(child: ChildProcess, everyMs = 100): { stop: () => { rss: number; heapUsed: number; samples: number } } {
  let rss = 0;
  let heapUsed = 0;
  let samples = 0;
  const onMessage = (m: unknown): void => {
    const peek = (m as { peek?: Memory }).peek;
    if (!peek) return;
    samples++;
    rss = Math.max(rss, peek.rss);
    heapUsed = Math.max(heapUsed, peek.heapUsed);
  };
  child.on('message', onMessage);
  const timer = setInterval(() => child.send({ cmd: 'peek' }), everyMs);
  child.send({ cmd: 'peek' });
  return {
    stop: () => {
      clearInterval(timer);
      child.off('message', onMessage);
      return { rss, heapUsed, samples };
    },
  };
}

const http = new Agent({ connections: HTTP_CONNECTIONS, keepAliveTimeout: 60_000, pipelining: 1 });

async function api<T>(info: Ready, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, raw?: Buffer): Promise<T> {
  const res = await request(`${info.http}${path}`, {
    method,
    dispatcher: http,
    headers: {
      authorization: `Bearer ${info.adminToken}`,
      ...(raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(raw ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** A real, server-signed release: one cpu variant whose artifact is `bytes`. */
async function publishRelease(info: Ready, version: string, bytes: Buffer): Promise<void> {
  const base = `/v1/models/${MODEL}/versions`;
  await api(info, 'POST', base, {
    version,
    metadata: { inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 784] }], outputs: [{ name: 'logits', dtype: 'float32', shape: [-1, 10] }] },
  });
  await api(info, 'POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
  await api(info, 'PUT', `${base}/${version}/variants/cpu/artifact`, undefined, bytes);
  await api(info, 'POST', `${base}/${version}/publish`, { signing: 'server' });
}

interface DeviceRelease { model: string; version: string; digest: string; release: unknown }

/**
 * The part of the agent's install path that touches the server: signed manifest, variant choice,
 * download with streaming length/hash check. Throws on any refusal.
 */
async function install(httpBase: string, auth: string, trustedKeys: TrustedKeys, version: string, lastAcceptedCounter: number | undefined): Promise<number> {
  const rel = await request(`${httpBase}/v1/device/releases/${MODEL}/${version}`, { dispatcher: http, headers: { authorization: auth } });
  if (rel.statusCode !== 200) throw new Error(`device release ${version}: ${rel.statusCode} ${await rel.body.text()}`);
  const body = (await rel.body.json()) as DeviceRelease;
  const { manifest } = verifyRelease(body.release, { trustedKeys, now: Date.now(), ...(lastAcceptedCounter !== undefined ? { lastAcceptedCounter } : {}), expect: { model: MODEL, version } });
  const variant = manifest.variants.find((v) => matchVariant(v, INVENTORY).ok);
  if (!variant) throw new Error(`no variant of ${MODEL}@${version} fits`);
  const art = await request(`${httpBase}/v1/artifacts/${variant.file.sha256}`, { dispatcher: http, headers: { authorization: auth } });
  if (art.statusCode !== 200) throw new Error(`artifact ${variant.file.sha256}: ${art.statusCode} ${await art.body.text()}`);
  const verifier = createArtifactVerifier({ sha256: variant.file.sha256, length: variant.file.length });
  for await (const chunk of art.body) verifier.update(chunk as Buffer);
  verifier.final();
  return manifest.releaseCounter;
}

interface Sim { client: MqttClient; installed: string | null }

/** A simulated device: real credential and MQTT session; installs each desired version, then reports it healthy. */
function simulateDevice(
  info: Ready,
  id: string,
  credential: string,
  trustedKeys: TrustedKeys,
  onHealthy: (version: string) => void,
  onError: (err: unknown) => void,
): Promise<Sim> {
  const { hostname, port } = new URL(info.mqtt);
  const auth = `Basic ${Buffer.from(`${id}:${credential}`).toString('base64')}`;
  const client = new MqttClient(() => createConnection({ host: hostname, port: Number(port) }).setNoDelay(true), {
    clientId: id,
    username: id,
    password: credential,
    protocolVersion: 4,
    clean: true,
    keepalive: 600,
    reconnectPeriod: 0,
  });
  const sim: Sim = { client, installed: null };
  let counter: number | undefined;
  let latestGeneration = -1;
  const desiredTopic = deviceTopic(id, 'desired');
  const report = (generation: number, version: string | undefined): void => {
    const models: ReportedState['models'] = version ? { [MODEL]: { version, state: 'healthy', provider: 'cpu' } } : {};
    client.publish(deviceTopic(id, 'reported'), encodeMessage('reported', { appliedGeneration: generation, models }).payload, { qos: 1 });
  };
  client.on('message', (topic, payload) => {
    if (topic !== desiredTopic) return;
    const d = decodeMessage('desired', payload);
    if (!d.ok) return;
    const { generation } = d.message.body;
    latestGeneration = Math.max(latestGeneration, generation);
    const version = d.message.body.models[MODEL]?.version;
    if (!version || version === sim.installed) return report(generation, sim.installed ?? undefined);
    install(info.http, auth, trustedKeys, version, counter).then(
      (releaseCounter) => {
        counter = releaseCounter;
        sim.installed = version;
        // A newer desired state arrived while this one installed: its own handler reports.
        if (generation !== latestGeneration) return;
        report(generation, version);
        onHealthy(version);
      },
      onError,
    );
  });
  return new Promise((resolve, reject) => {
    client.once('connect', async () => {
      await client.subscribeAsync(desiredTopic, { qos: 1 });
      resolve(sim);
    });
    client.once('error', reject);
  });
}

/** Resolves when `count` devices have reported `version` healthy; the time is the last report's. */
class HealthyWatch {
  #waiting = new Map<string, { need: number; have: number; resolve: (at: number) => void }>();
  expect(version: string, need: number): Promise<number> {
    return new Promise((resolve) => this.#waiting.set(version, { need, have: 0, resolve }));
  }
  healthy(version: string): void {
    const w = this.#waiting.get(version);
    if (!w) return;
    if (++w.have === w.need) {
      this.#waiting.delete(version);
      w.resolve(performance.now());
    }
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}

const { child, info } = await startServer();
const sims: Sim[] = [];
const errors: string[] = [];
try {
  // ---------------------------------------------------------------- releases (untimed)
  const artifact = randomBytes(ARTIFACT_BYTES);
  await api(info, 'POST', '/v1/models', { name: MODEL });
  const floorVersion = (rep: number): string => `1.${rep}.0`;
  const rolloutVersion = (rep: number): string => `2.${rep}.0`;
  // Published in the order devices meet them, so every release counter is above the last accepted.
  for (let rep = 0; rep < REPS; rep++) {
    await publishRelease(info, floorVersion(rep), artifact);
    await publishRelease(info, rolloutVersion(rep), artifact);
  }
  const keys = await api<{ keys: unknown }>(info, 'GET', '/v1/keys');
  // Pinned once, as each device would at first start; TrustedKeys is immutable, so sharing it changes nothing per device.
  const trustedKeys = TrustedKeys.from(keys.keys);

  // ---------------------------------------------------------------- fleet (untimed for the result)
  const t0 = performance.now();
  const creds = await pool(N, CONCURRENCY, async (i) => {
    const id = `sim-${i}`;
    const body = await request(`${info.http}/v1/enroll`, {
      method: 'POST',
      dispatcher: http,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: info.enrollmentToken, deviceId: id, enrollmentKey: `sim-key-${i}`.padEnd(40, 'k'), labels: { fleet: 'bench' } }),
    }).then((r) => r.body.json() as Promise<{ credential?: string }>);
    if (!body.credential) throw new Error(`enrollment of ${id} failed: ${JSON.stringify(body)}`);
    return { id, credential: body.credential };
  });
  const enrollMs = performance.now() - t0;
  const watch = new HealthyWatch();
  const onError = (err: unknown): void => {
    if (errors.length < 20) errors.push(String(err));
  };
  const t1 = performance.now();
  sims.push(...(await pool(N, CONCURRENCY, (i) => simulateDevice(info, creds[i]!.id, creds[i]!.credential, trustedKeys, (v) => watch.healthy(v), onError))));
  const connectMs = performance.now() - t1;
  console.log(JSON.stringify({ phase: 'fleet ready', devices: N, enrollMs: Math.round(enrollMs), connectMs: Math.round(connectMs) }));

  const reps: unknown[] = [];
  const summary: Array<{ floorMs: number; rolloutMs: number; serverMs: number; peakRss: number }> = [];
  for (let rep = 0; rep < REPS; rep++) {
    // ---------------------------------------------------------------- floor
    const fv = floorVersion(rep);
    const floorDone = watch.expect(fv, N);
    const floorMem = memorySampler(child);
    const fStart = performance.now();
    await pool(N, CONCURRENCY, (i) => api(info, 'PUT', `/v1/devices/${creds[i]!.id}/desired`, { models: { [MODEL]: { version: fv } } }));
    const putsMs = performance.now() - fStart;
    const floorMs = (await withDeadline(floorDone, 600_000, `floor ${fv}`)) - fStart;
    const floorPeak = floorMem.stop();

    // ---------------------------------------------------------------- rollout
    const version = rolloutVersion(rep);
    const rolloutDone = watch.expect(version, N);
    const mem = memorySampler(child);
    const start = performance.now();
    const created = await api<{ id: string }>(info, 'POST', '/v1/rollouts', {
      name: `bench ${rep}`,
      target: { labels: { fleet: 'bench' } },
      model: MODEL,
      version,
      stages: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }].map((s) => ({ ...s, bakeTimeSec: 0, successThreshold: 100 })),
      rate: { baseRatePerMin: 1_000_000 },
    });
    const lastHealthyAt = await withDeadline(rolloutDone, 600_000, `rollout to ${version}`);
    let view: { state: string; counts: Record<string, number>; createdAt: number; finishedAt: number | null } = { state: 'running', counts: {}, createdAt: 0, finishedAt: null };
    while (view.state === 'running') {
      view = await api(info, 'GET', `/v1/rollouts/${created.id}`);
      if (view.state === 'running') await new Promise((r) => setTimeout(r, 20));
      if (performance.now() - start > 600_000) throw new Error('rollout did not complete within 10 minutes');
    }
    const peak = mem.stop();
    if (view.state !== 'completed') throw new Error(`rollout ended ${view.state}: ${JSON.stringify(view.counts)}`);
    const events = await api<{ items: Array<{ ts: number; stage: number | null; kind: string }> }>(info, 'GET', `/v1/rollouts/${created.id}/events?limit=200`);
    const phases = [0, 1, 2, 3].map((stage) => {
      const started = events.items.find((e) => e.stage === stage && e.kind === 'stage.started')?.ts;
      const completed = events.items.find((e) => e.stage === stage && e.kind === 'stage.completed')?.ts;
      return {
        stage,
        percent: [1, 10, 50, 100][stage],
        startMs: started !== undefined ? started - view.createdAt : null,
        durationMs: started !== undefined && completed !== undefined ? completed - started : null,
      };
    });
    const rolloutMs = lastHealthyAt - start;
    const serverMs = view.finishedAt! - view.createdAt;
    const r = {
      rep,
      floor: { version: fv, allHealthyMs: Math.round(floorMs), putsMs: Math.round(putsMs), serverPeakRssMiB: +(floorPeak.rss / 2 ** 20).toFixed(1) },
      rollout: {
        version,
        allHealthyMs: Math.round(rolloutMs),
        serverCompleteMs: serverMs,
        succeeded: view.counts.succeeded ?? 0,
        phases,
        serverPeakRssMiB: +(peak.rss / 2 ** 20).toFixed(1),
        serverPeakHeapMiB: +(peak.heapUsed / 2 ** 20).toFixed(1),
        memorySamples: peak.samples,
      },
      ratioRolloutToFloor: +(rolloutMs / floorMs).toFixed(2),
    };
    reps.push(r);
    summary.push({ floorMs, rolloutMs, serverMs, peakRss: peak.rss });
    console.log(JSON.stringify(r));
  }
  const med = (f: (s: (typeof summary)[number]) => number): number => Math.round(median(summary.map(f)));
  const medianServerMs = med((s) => s.serverMs);
  const out = {
    bench: 'rollout',
    devices: N,
    stages: '1% → 10% → 50% → 100%, bake 0, success threshold 100%',
    device: `real MQTT session; per desired version: GET device release, verifyRelease against keys pinned from /v1/keys, matchVariant, GET artifact (${ARTIFACT_BYTES} B) checked with createArtifactVerifier, report healthy`,
    floor: 'same devices, same run: one PUT /v1/devices/:id/desired per device (concurrency ' + CONCURRENCY + '), same install path, no rollout',
    httpConnections: HTTP_CONNECTIONS,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg: loadavg() },
    fleet: { enrollMs: Math.round(enrollMs), connectMs: Math.round(connectMs) },
    reps,
    median: {
      rolloutAllHealthyMs: med((s) => s.rolloutMs),
      rolloutServerCompleteMs: medianServerMs,
      floorAllHealthyMs: med((s) => s.floorMs),
      ratioRolloutToFloor: +median(summary.map((s) => s.rolloutMs / s.floorMs)).toFixed(2),
      serverPeakRssMiB: +(Math.max(...summary.map((s) => s.peakRss)) / 2 ** 20).toFixed(1),
      devicesPerMin: Math.round((N / med((s) => s.rolloutMs)) * 60_000),
    },
    target: { ms: 60_000, withinTarget: med((s) => s.rolloutMs) <= 60_000, vsAwsIotJobs1000PerMin: +(N / med((s) => s.rolloutMs) * 60).toFixed(1) },
    deviceErrors: errors,
  };
  const file = join(here, '..', '..', 'bench-results', `rollout-${N}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(out, null, 2));
  console.log(JSON.stringify({ median: out.median, target: out.target, deviceErrors: errors.length }, null, 2));
  console.log(`written to ${file}`);
} catch (err) {
  console.error(err, errors);
  process.exitCode = 1;
} finally {
  for (const s of sims) s.client.end(true);
  child.send({ cmd: 'exit' });
  await http.close();
}
process.exit(process.exitCode ?? 0);
