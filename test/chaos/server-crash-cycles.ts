/**
 * Server crash cycles: the real control server as a child process on fixed ports and a fixed data
 * folder, with four workloads running against it the whole time:
 *   (a) event ingestion: simulated devices (plain mqtt.js clients) publish durable events and keep
 *       every id the server acknowledged; unacknowledged events are sent again after a reconnect,
 *       the way the agent's outbox does;
 *   (b) enrollments: new devices are pre-authorized and enroll; the credentials that came back are kept;
 *   (c) uploads: draft versions of a model get a few hundred KB artifact each; 2xx answers are kept;
 *   (d) rollouts: staged rollouts of fresh versions over the simulated devices, which report
 *       whatever their desired state asks for, one after another across cycles.
 * Each cycle waits a random (seeded) time, kills the server with SIGKILL, then opens its SQLite
 * file read-only and checks:
 *   1. `PRAGMA integrity_check` is ok;
 *   2. every acknowledged event id is stored exactly once;
 *   3. every acknowledged enrollment's device is accepted and holds that credential;
 *   4. every acknowledged upload's variant records its sha256 and length, and its blob is on disk
 *      with that hash; no blob under the artifact addresses is partial (hash differs from its name);
 *   5. no rollout went back: state, stage and each device's state are the same or later than at
 *      the previous kill, and no device was notified twice by one rollout.
 * Then it starts the server again on the same folder. After the last cycle every rollout must
 * finish (completed, each device notified once and succeeded).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage } from '@flotilla/protocol';
import { freePort, spawnServer, type ServerProcess, type ServerProcessOptions } from '../helpers/server-process.ts';
import { rng } from './seeded-random.ts';

const ADMIN = 'flta_chaos-server-admin-0123456789abcdef';
const ENROLL = 'flte_chaos-server-enroll-0123456789abc';
const MODEL = 'digits';
const BLOB_MODEL = 'blobs';
const FLEET = { fleet: 'chaos-server' };
/** Version metadata: the server only stores it; simulated devices never load a model. */
const METADATA = { inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }] };
/** Events a simulated device keeps unacknowledged at most; it waits for acks beyond that. */
const IN_FLIGHT = 8;

export interface ServerCrashOptions {
  cycles: number;
  seed: number;
  /** Simulated devices publishing events and taking part in rollouts. */
  devices?: number;
  /** Random kill delay after the server is ready, in ms. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Epoch ms after which no new cycle starts: a run that must fit a time box stops early and says so. */
  until?: number;
  onCycle?: (c: ServerCycleRecord) => void;
}

export interface RolloutAtKill {
  id: string;
  state: string;
  stage: number;
  devices: Record<string, string>;
}

export interface ServerCycleRecord {
  cycle: number;
  delayMs: number;
  /** Acknowledgements received during this cycle. */
  eventsAcked: number;
  enrollmentsAcked: number;
  uploadsAcked: number;
  /** The newest rollout as committed at the kill. */
  rollout: RolloutAtKill | null;
  restartMs: number;
  violations: string[];
  ms: number;
}

export interface ServerCrashReport {
  cycles: number;
  requestedCycles: number;
  seed: number;
  devices: number;
  violations: number;
  totals: {
    eventsAcked: number;
    eventsResent: number;
    enrollmentsAcked: number;
    uploadsAcked: number;
    rolloutsCreated: number;
    rolloutsCompleted: number;
    /** Kills that landed while a rollout was running (not between rollouts). */
    killsMidRollout: number;
  };
  finalViolations: string[];
  records: ServerCycleRecord[];
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A device without agent code: publishes durable events, keeps the acknowledged ids, sends the
 * unacknowledged ones again (same id) after every reconnect, and answers each desired state with a
 * report of every model healthy at its desired version.
 */
class SimulatedDevice {
  readonly acked = new Set<string>();
  readonly #pending = new Map<string, Buffer>();
  #seq = 0;
  #client: MqttClient | undefined;
  resent = 0;
  ackedThisCycle = 0;

  constructor(
    readonly id: string,
    readonly credential: string,
  ) {}

  connect(url: string): void {
    const client = mqtt.connect(url, { clientId: this.id, username: this.id, password: this.credential, clean: true, reconnectPeriod: 150, connectTimeout: 2000 });
    this.#client = client;
    client.on('error', () => undefined);
    client.on('connect', () => {
      client.subscribe([deviceTopic(this.id, 'desired'), deviceTopic(this.id, 'ack')], { qos: 1 }, () => {
        for (const payload of this.#pending.values()) {
          this.resent++;
          client.publish(deviceTopic(this.id, 'events'), payload, { qos: 1 });
        }
      });
    });
    client.on('message', (topic, payload) => {
      if (topic === deviceTopic(this.id, 'ack')) {
        const m = decodeMessage('ack', payload);
        if (!m.ok) return;
        for (const id of m.message.body.ids) {
          if (this.#pending.delete(id)) {
            this.acked.add(id);
            this.ackedThisCycle++;
          }
        }
        return;
      }
      const d = decodeMessage('desired', payload);
      if (!d.ok) return;
      const models = Object.fromEntries(Object.entries(d.message.body.models).map(([name, m]) => [name, { version: m.version, state: 'healthy' as const }]));
      client.publish(deviceTopic(this.id, 'reported'), encodeMessage('reported', { appliedGeneration: d.message.body.generation, models }).payload, { qos: 1 });
    });
  }

  /** Publishes one more event if connected and not too far ahead of the acks. */
  pump(): void {
    const c = this.#client;
    if (!c?.connected || this.#pending.size >= IN_FLIGHT) return;
    const { message, payload } = encodeMessage('events', { kind: 'chaos.tick', seq: ++this.#seq, data: { n: this.#seq } });
    this.#pending.set(message.id, payload);
    c.publish(deviceTopic(this.id, 'events'), payload, { qos: 1 });
  }

  close(): void {
    this.#client?.end(true);
  }
}

interface AckedUpload {
  version: string;
  sha256: string;
  length: number;
}

const ROLLOUT_RANK: Record<string, number> = { running: 0, awaitingApproval: 0, paused: 0, completed: 1, cancelled: 1, reverted: 1, preempted: 1 };
const DEVICE_RANK: Record<string, number> = { pending: 0, notified: 1, succeeded: 2, failed: 2, rejected: 2, timedOut: 2, reverted: 3, skipped: 2 };

export async function runServerCrashCycles(o: ServerCrashOptions): Promise<ServerCrashReport> {
  const started = Date.now();
  const rand = rng(o.seed);
  const deviceCount = o.devices ?? 5;
  const minDelay = o.minDelayMs ?? 300;
  const maxDelay = o.maxDelayMs ?? 2500;
  const root = mkdtempSync(join(tmpdir(), 'flt-chaos-server-'));
  const opts: ServerProcessOptions = { dataDir: join(root, 'server'), httpPort: await freePort(), mqttPort: await freePort(), adminToken: ADMIN, enrollmentToken: ENROLL };
  let server: ServerProcess | undefined = await spawnServer(opts);
  const http = server.http;
  const mqttUrl = `mqtt://127.0.0.1:${opts.mqttPort}`;
  const dbPath = join(opts.dataDir, 'flotilla.db');
  const artifactsRoot = join(opts.dataDir, 'artifacts', 'sha256');

  const call = async (method: string, path: string, body?: object | Buffer, token = ADMIN): Promise<{ status: number; json: unknown }> => {
    const raw = Buffer.isBuffer(body);
    const res = await fetch(`${http}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }) },
      ...(body === undefined ? {} : { body: raw ? new Uint8Array(body) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  };
  /** 2xx, or 409 where the step was already done before a kill. */
  const step = async (method: string, path: string, body?: object | Buffer): Promise<void> => {
    const r = await call(method, path, body);
    if (r.status >= 300 && r.status !== 409) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  };
  const enrollKey = (id: string) => `key-${id}-`.padEnd(40, 'k');
  const enroll = async (id: string, labels: Record<string, string>): Promise<string | null> => {
    await step('POST', '/v1/devices', { id, labels });
    const r = await call('POST', '/v1/enroll', { enrollmentToken: ENROLL, deviceId: id, enrollmentKey: enrollKey(id) });
    if (r.status !== 200) return null;
    return (r.json as { credential: string }).credential;
  };
  const publishVersion = async (version: string): Promise<void> => {
    const base = `/v1/models/${MODEL}/versions`;
    await step('POST', '/v1/models', { name: MODEL });
    await step('POST', base, { version, metadata: METADATA });
    await step('POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
    const state = (await call('GET', `${base}/${version}`)).json as { state?: string; status?: string } | undefined;
    if (state?.state === 'published' || state?.status === 'published') return;
    await step('PUT', `${base}/${version}/variants/cpu/artifact`, randomBytes(64 * 1024));
    await step('POST', `${base}/${version}/publish`, {});
  };

  // The fleet: enrolled once, labelled for the rollouts, on a first version.
  const devices: SimulatedDevice[] = [];
  await publishVersion('2.0.0');
  for (let i = 1; i <= deviceCount; i++) {
    const id = `chaos-d${i}`;
    const credential = await enroll(id, FLEET);
    if (!credential) throw new Error(`enrollment of ${id} failed`);
    await step('PUT', `/v1/devices/${id}/desired`, { models: { [MODEL]: { version: '2.0.0' } } });
    const d = new SimulatedDevice(id, credential);
    d.connect(mqttUrl);
    devices.push(d);
  }
  await step('POST', '/v1/models', { name: BLOB_MODEL });

  let running = true;
  /** Set after the last cycle: the rollout loop starts no new rollout and exits. */
  let draining = false;
  const acceptedEnrollments = new Map<string, string>();
  const acceptedUploads: AckedUpload[] = [];
  let enrollThisCycle = 0;
  let uploadsThisCycle = 0;
  let cycleNo = 0;
  const loopViolations: string[] = [];

  // (a) event ingestion
  const pump = setInterval(() => {
    for (const d of devices) d.pump();
  }, 20);

  // (b) enrollments
  const enrollLoop = (async () => {
    let n = 0;
    while (running) {
      const id = `chaos-e${++n}`;
      try {
        const credential = await enroll(id, {});
        if (credential) {
          acceptedEnrollments.set(id, credential);
          enrollThisCycle++;
        }
      } catch {
        await sleep(100);
      }
      await sleep(50);
    }
  })();

  // (c) uploads: each on its own draft version, so every acknowledged blob stays referenced.
  const uploadLoop = (async () => {
    let n = 0;
    while (running) {
      const version = `0.${cycleNo}.${++n}`;
      const base = `/v1/models/${BLOB_MODEL}/versions`;
      try {
        await step('POST', base, { version, metadata: METADATA });
        await step('POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
        const bytes = randomBytes(200 * 1024 + Math.floor(rand() * 200 * 1024));
        const r = await call('PUT', `${base}/${version}/variants/cpu/artifact`, bytes);
        if (r.status >= 200 && r.status < 300) {
          acceptedUploads.push({ version, sha256: sha256(bytes), length: bytes.length });
          uploadsThisCycle++;
        }
      } catch {
        await sleep(100);
      }
      await sleep(50);
    }
  })();

  // (d) rollouts, one after another
  const rolloutIds: string[] = [];
  let rolloutsCompleted = 0;
  const rolloutLoop = (async () => {
    let k = 1;
    while (running && !draining) {
      const id = `chaos-r${k}`;
      const version = `2.0.${k}`;
      try {
        const r = await call('GET', `/v1/rollouts/${id}`);
        if (r.status === 404) {
          await publishVersion(version);
          const spec = { id, target: { labels: FLEET }, model: MODEL, version, stages: [{ count: 1, bakeTimeSec: 1 }, { count: 3, bakeTimeSec: 1 }, { percent: 100 }], perDeviceTimeoutSec: 120 };
          const c = await call('POST', '/v1/rollouts', spec);
          if (c.status === 201 || c.status === 409) {
            if (!rolloutIds.includes(id)) rolloutIds.push(id);
          } else if (c.status < 500) {
            loopViolations.push(`rollout ${id} refused: ${c.status} ${JSON.stringify(c.json)}`);
            running = false;
          }
        } else if (r.status === 200) {
          if (!rolloutIds.includes(id)) rolloutIds.push(id);
          const state = (r.json as { state: string }).state;
          if (state === 'completed') {
            k++;
          } else if (ROLLOUT_RANK[state] === 1) {
            loopViolations.push(`rollout ${id} ended ${state}`);
            k++;
          }
        }
      } catch {
        // server down
      }
      await sleep(150);
    }
  })();

  // What was committed at the previous kill, to compare against.
  let prevRollouts = new Map<string, RolloutAtKill>();
  const verifiedBlobs = new Set<string>();

  const checkDb = (): { violations: string[]; rollouts: Map<string, RolloutAtKill>; newest: RolloutAtKill | null } => {
    const v: string[] = [];
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const integrity = db.pragma('integrity_check', { simple: true });
      if (integrity !== 'ok') v.push(`integrity_check: ${String(integrity)}`);

      const counts = new Map<string, number>();
      for (const row of db.prepare('SELECT id, COUNT(*) AS c FROM device_events GROUP BY id').all() as Array<{ id: string; c: number }>) counts.set(row.id, row.c);
      for (const d of devices) {
        let missing = 0;
        for (const id of d.acked) {
          const c = counts.get(id) ?? 0;
          if (c === 0) missing++;
          else if (c > 1) v.push(`event ${id} of ${d.id} stored ${c} times`);
        }
        if (missing > 0) v.push(`${missing} acknowledged events of ${d.id} missing`);
      }

      const deviceRow = db.prepare('SELECT status, credential_hash FROM devices WHERE id = ?');
      for (const [id, credential] of acceptedEnrollments) {
        const row = deviceRow.get(id) as { status: string; credential_hash: string | null } | undefined;
        if (!row) v.push(`enrolled device ${id} missing`);
        else if (row.status !== 'accepted' || row.credential_hash !== sha256(Buffer.from(credential))) v.push(`enrolled device ${id}: ${row.status}, credential ${row.credential_hash === null ? 'none' : 'differs'}`);
      }

      const variantRow = db.prepare("SELECT sha256, length FROM model_variants WHERE model = ? AND version = ? AND id = 'cpu'");
      for (const u of acceptedUploads) {
        const row = variantRow.get(BLOB_MODEL, u.version) as { sha256: string | null; length: number | null } | undefined;
        if (!row || row.sha256 !== u.sha256 || row.length !== u.length) v.push(`upload ${u.version}: variant records ${row ? `${row.sha256}/${row.length}` : 'nothing'}`);
        const file = join(artifactsRoot, u.sha256.slice(0, 2), u.sha256);
        if (!existsSync(file) || statSync(file).size !== u.length) v.push(`upload ${u.version}: blob ${u.sha256} missing or wrong size`);
      }
      // Every blob at an address is whole: its hash is its name (checked once per blob).
      if (existsSync(artifactsRoot)) {
        for (const dir of readdirSync(artifactsRoot)) {
          for (const name of readdirSync(join(artifactsRoot, dir))) {
            if (verifiedBlobs.has(name)) continue;
            const got = sha256(readFileSync(join(artifactsRoot, dir, name)));
            if (got !== name) v.push(`blob ${name} is partial (hashes to ${got})`);
            else verifiedBlobs.add(name);
          }
        }
      }
      for (const row of db.prepare('SELECT model, version, sha256 FROM model_variants WHERE sha256 IS NOT NULL').all() as Array<{ model: string; version: string; sha256: string }>) {
        if (!verifiedBlobs.has(row.sha256)) v.push(`variant ${row.model}@${row.version} points at a missing blob ${row.sha256}`);
      }

      const rollouts = new Map<string, RolloutAtKill>();
      for (const r of db.prepare('SELECT id, state, stage FROM rollouts ORDER BY created_at, id').all() as Array<{ id: string; state: string; stage: number }>) {
        const devs = Object.fromEntries((db.prepare('SELECT device_id, state FROM rollout_devices WHERE rollout_id = ?').all(r.id) as Array<{ device_id: string; state: string }>).map((x) => [x.device_id, x.state]));
        rollouts.set(r.id, { ...r, devices: devs });
      }
      for (const [id, before] of prevRollouts) {
        const now = rollouts.get(id);
        if (!now) {
          v.push(`rollout ${id} vanished`);
          continue;
        }
        if (now.stage < before.stage) v.push(`rollout ${id} went back from stage ${before.stage} to ${now.stage}`);
        if ((ROLLOUT_RANK[now.state] ?? 0) < (ROLLOUT_RANK[before.state] ?? 0)) v.push(`rollout ${id} went back from ${before.state} to ${now.state}`);
        for (const [dev, s] of Object.entries(before.devices)) {
          const ns = now.devices[dev];
          if (ns === undefined || (DEVICE_RANK[ns] ?? 0) < (DEVICE_RANK[s] ?? 0)) v.push(`rollout ${id}: ${dev} went back from ${s} to ${ns ?? 'absent'}`);
        }
      }
      for (const row of db.prepare("SELECT rollout_id, device_id, COUNT(*) AS c FROM rollout_events WHERE kind = 'device.notified' GROUP BY rollout_id, device_id HAVING c > 1").all() as Array<{ rollout_id: string; device_id: string; c: number }>) {
        v.push(`rollout ${row.rollout_id} notified ${row.device_id} ${row.c} times`);
      }
      const newest = [...rollouts.values()].at(-1) ?? null;
      return { violations: v, rollouts, newest };
    } finally {
      db.close();
    }
  };

  const records: ServerCycleRecord[] = [];
  let killsMidRollout = 0;
  let restartMs = 0;
  try {
    for (let c = 1; c <= o.cycles && running && Date.now() < (o.until ?? Infinity); c++) {
      const t0 = Date.now();
      cycleNo = c;
      const delayMs = Math.round(minDelay + rand() * (maxDelay - minDelay));
      await sleep(delayMs);
      await server!.kill9();
      server = undefined;
      // Acks already on the wire reach the devices; nothing new can be committed now.
      await sleep(50);
      const { violations, rollouts, newest } = checkDb();
      violations.push(...loopViolations.splice(0));
      prevRollouts = rollouts;
      if (newest && ROLLOUT_RANK[newest.state] === 0) killsMidRollout++;
      const record: ServerCycleRecord = {
        cycle: c,
        delayMs,
        eventsAcked: devices.reduce((s, d) => s + d.ackedThisCycle, 0),
        enrollmentsAcked: enrollThisCycle,
        uploadsAcked: uploadsThisCycle,
        rollout: newest,
        restartMs,
        violations,
        ms: 0,
      };
      for (const d of devices) d.ackedThisCycle = 0;
      enrollThisCycle = 0;
      uploadsThisCycle = 0;
      const r0 = Date.now();
      server = await spawnServer(opts);
      restartMs = Date.now() - r0;
      record.ms = Date.now() - t0;
      records.push(record);
      o.onCycle?.(record);
    }

    // After the last restart every rollout finishes, each device notified once and succeeded.
    const finalViolations: string[] = [...loopViolations.splice(0)];
    draining = true;
    await rolloutLoop;
    const last = rolloutIds.at(-1);
    const end = Date.now() + 60_000;
    while (last && Date.now() < end) {
      const r = await call('GET', `/v1/rollouts/${last}`).catch(() => undefined);
      if (r?.status === 200 && (r.json as { state: string }).state === 'completed') break;
      await sleep(200);
    }
    running = false;
    clearInterval(pump);
    await Promise.all([enrollLoop, uploadLoop, rolloutLoop]);
    for (const id of rolloutIds) {
      const r = await call('GET', `/v1/rollouts/${id}`);
      const view = r.json as { state: string; counts: Record<string, number> };
      if (view.state === 'completed') rolloutsCompleted++;
      if (view.state !== 'completed') finalViolations.push(`rollout ${id} did not finish: ${view.state}`);
      else if (view.counts.succeeded !== devices.length) finalViolations.push(`rollout ${id} completed with ${JSON.stringify(view.counts)}`);
      const events = (await call('GET', `/v1/rollouts/${id}/events?devices=true&limit=1000`)).json as { items: Array<{ kind: string; deviceId: string | null }> };
      for (const d of devices) {
        const n = events.items.filter((e) => e.kind === 'device.notified' && e.deviceId === d.id).length;
        if (view.state === 'completed' && n !== 1) finalViolations.push(`rollout ${id} notified ${d.id} ${n} times`);
      }
    }
    await server!.kill9();
    server = undefined;
    finalViolations.push(...checkDb().violations);

    const violations = records.filter((r) => r.violations.length > 0).length + (finalViolations.length > 0 ? 1 : 0);
    return {
      cycles: records.length,
      requestedCycles: o.cycles,
      seed: o.seed,
      devices: devices.length,
      violations,
      totals: {
        eventsAcked: devices.reduce((s, d) => s + d.acked.size, 0),
        eventsResent: devices.reduce((s, d) => s + d.resent, 0),
        enrollmentsAcked: acceptedEnrollments.size,
        uploadsAcked: acceptedUploads.length,
        rolloutsCreated: rolloutIds.length,
        rolloutsCompleted,
        killsMidRollout,
      },
      finalViolations,
      records,
      ms: Date.now() - started,
    };
  } finally {
    running = false;
    clearInterval(pump);
    for (const d of devices) d.close();
    await server?.kill9();
    rmSync(root, { recursive: true, force: true });
  }
}
