/**
 * Network-fault cycles: the real server (child process), one real pool worker and N real agent
 * daemons, with every link of every agent going through its own fault proxy
 * (test/chaos/net/fault-proxy.ts): the MQTT link and the HTTP link to the server (together, "the
 * server link"), and the link to its cloud pool (each agent has a pool of its own region whose
 * one endpoint is its proxy; the other agents' pools stay reachable for failover).
 *
 * Workload, the whole time:
 *   (a) every agent answers inference requests on its local KServe API under an escalation policy
 *       that sends every request to the cloud (`auditRate: 1`) and keeps each one as a hard
 *       example: one durable outbox event per answered request, named by the answer's request id;
 *   (b) staged rollouts of fresh versions over all agents, one after another (downloads go
 *       through the HTTP link).
 * Each cycle picks a seeded fault (mode, parameters, 0.2 to 3 s long), a seeded subset of agents
 * and links, applies it, waits, clears it, and checks:
 *   1. acknowledged = answered more than a second ago and no longer in the agent's outbox
 *      (read from its agent.db). Every acknowledged event is on the server (hard_examples) exactly
 *      once: none lost, none duplicated (a second envelope for the same request id is counted
 *      as a duplicate; the server's own dedup by envelope id hides resends, which are expected).
 * After the last cycle the faults stop and it checks:
 *   2. every answered request's event reaches the server within its bound: 60 s after it was
 *      produced, or, when a fault on that agent's server link overlapped its wait, 2 x that
 *      fault's duration + 60 s after the fault cleared (a chain of faults extends the bound);
 *   3. every rollout finishes (completed); none is left running.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { modelPath, type ModelCard } from '@flotilla/modelkit';
import { HARD_EXAMPLE_EVENT } from '@flotilla/protocol';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { BUILD_DIR, localApiUrl, otaBuilds } from '../helpers/ota-registry.ts';
import { cloudModelRepository, spawnPool, type PoolProcess } from '../helpers/pool-process.ts';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server-process.ts';
import { FaultProxy, type FaultProxyStats } from './net/fault-proxy.ts';
import type { Fault, FaultMode } from './net/faults.ts';
import { rng } from './seeded-random.ts';

const ADMIN = 'flta_chaos-net-admin-0123456789abcdefgh';
const ENROLL = 'flte_chaos-net-enroll-0123456789abcde';
const MODEL = 'digits';
const FLEET = { fleet: 'chaos-net' };
/** Slack after a fault clears, and the factor on its duration, in the delivery bound. */
const BOUND_BASE_MS = 60_000;
const BOUND_FACTOR = 2;

export type LinkSet = 'server' | 'pool' | 'both';

export interface NetFaultOptions {
  cycles: number;
  seed: number;
  agents?: number;
  minOutageMs?: number;
  maxOutageMs?: number;
  /** Pause between one agent's inference requests. */
  requestEveryMs?: number;
  /** Epoch ms after which no new cycle starts. */
  until?: number;
  onCycle?: (c: NetCycleRecord) => void;
  /** Progress lines (setup, drain). */
  log?: (line: string) => void;
}

export interface NetCycleRecord {
  cycle: number;
  fault: Fault;
  outageMs: number;
  links: LinkSet;
  agents: string[];
  /** Events acknowledged so far (all agents). */
  acked: number;
  /** Answered requests so far. */
  produced: number;
  violations: string[];
  ms: number;
}

export interface ModeCounts {
  cycles: number;
  /** Events whose wait overlapped a fault of this mode on the agent's server link (the last one that bounds them). */
  eventsAffected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  overBound: number;
  /** Largest delivery time after the fault cleared, and the bound of that fault. */
  maxDelayAfterClearMs: number;
  boundAtMaxMs: number;
}

export interface NetFaultReport {
  cycles: number;
  requestedCycles: number;
  seed: number;
  agents: number;
  violations: number;
  totals: {
    requests: number;
    /** Answers other than 200, and transport errors. */
    failedRequests: number;
    /** 200 answers with no request id (nothing escalated, so no event). */
    notEscalated: number;
    answeredBy: Record<string, number>;
    eventsProduced: number;
    eventsAcked: number;
    eventsDelivered: number;
    lost: number;
    duplicates: number;
    overBound: number;
    /** Events the server stored as a second envelope for a request it already had (must be 0). */
    duplicateEnvelopes: number;
    /** Entries the agents' outboxes dropped to stay in bounds (reported by their outbox.dropped events). */
    outboxDropped: number;
    rolloutsCreated: number;
    rolloutsCompleted: number;
    /** Stopped by their own rules after devices failed past their retries (see rolloutAborts). */
    rolloutsAborted: number;
    rolloutsStuck: number;
    drainMs: number;
  };
  byMode: Record<string, ModeCounts>;
  byLinks: Record<string, number>;
  /** Each aborted rollout with its reason and its devices' failures. */
  rolloutAborts: string[];
  proxies: { mqtt: FaultProxyStats; http: FaultProxyStats; pool: FaultProxyStats };
  finalViolations: string[];
  records: NetCycleRecord[];
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Produced {
  agent: number;
  at: number;
}

interface FaultSpan {
  mode: FaultMode;
  start: number;
  end: number;
}

interface Edge {
  id: string;
  dir: string;
  mqtt: FaultProxy;
  http: FaultProxy;
  pool: FaultProxy;
  proc: AgentProcess | undefined;
  api: string;
  /** Faults on this agent's server link, in time order. */
  spans: FaultSpan[];
}

/** A seeded fault of each mode with its parameters. */
function pickFault(rand: () => number): Fault {
  const modes: FaultMode[] = ['latency', 'blackhole', 'half-open', 'one-way', 'reset', 'trickle', 'bandwidth'];
  const mode = modes[Math.floor(rand() * modes.length)]!;
  switch (mode) {
    case 'latency':
      return { mode, ms: 50 + Math.floor(rand() * 950) };
    case 'half-open':
      return { mode, orphan: rand() < 0.5 ? 'client' : 'target' };
    case 'one-way':
      return { mode, drop: rand() < 0.5 ? 'up' : 'down' };
    case 'trickle':
      return { mode, bytes: 16 + Math.floor(rand() * 240), everyMs: 50 + Math.floor(rand() * 150) };
    case 'bandwidth':
      return { mode, bytesPerSec: 2048 + Math.floor(rand() * 62 * 1024) };
    default:
      return { mode } as Fault;
  }
}

function emptyStats(): FaultProxyStats {
  return { accepted: 0, broken: 0, resets: 0, open: 0, up: { delivered: 0, dropped: 0 }, down: { delivered: 0, dropped: 0 }, queued: 0 };
}

function addStats(a: FaultProxyStats, b: FaultProxyStats): FaultProxyStats {
  return {
    accepted: a.accepted + b.accepted,
    broken: a.broken + b.broken,
    resets: a.resets + b.resets,
    open: a.open + b.open,
    up: { delivered: a.up.delivered + b.up.delivered, dropped: a.up.dropped + b.up.dropped },
    down: { delivered: a.down.delivered + b.down.delivered, dropped: a.down.dropped + b.down.dropped },
    queued: a.queued + b.queued,
  };
}

/**
 * When event `p` must be on the server: 60 s after it was produced, extended by every fault on its
 * agent's server link that began before the bound so far and ended after the event was produced.
 */
export function deliveryBound(producedAt: number, spans: readonly FaultSpan[]): { bound: number } {
  let bound = producedAt + BOUND_BASE_MS;
  for (const s of spans) {
    if (s.start > bound) break;
    if (s.end < producedAt) continue;
    bound = Math.max(bound, s.end + BOUND_FACTOR * (s.end - s.start) + BOUND_BASE_MS);
  }
  return { bound };
}

export async function runNetFaultCycles(o: NetFaultOptions): Promise<NetFaultReport> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const rand = rng(o.seed);
  const agentCount = o.agents ?? 10;
  const minOutage = o.minOutageMs ?? 200;
  const maxOutage = o.maxOutageMs ?? 3000;
  const every = o.requestEveryMs ?? 500;
  const root = mkdtempSync(join(tmpdir(), 'flt-chaos-net-'));
  const cards = await otaBuilds();
  const builds = [cards.get('mnist-edge-int8')!, cards.get('mnist-edge-fp32')!];
  const repoDir = await cloudModelRepository();
  const edges: Edge[] = [];
  let server: ServerProcess | undefined;
  let pool: PoolProcess | undefined;
  let running = true;
  const loops: Array<Promise<void>> = [];
  try {
    const serverOpts = { dataDir: join(root, 'server'), httpPort: await freePort(), mqttPort: await freePort(), adminToken: ADMIN, enrollmentToken: ENROLL };
    server = await spawnServer(serverOpts, 120_000);
    pool = await spawnPool(repoDir);
    const http = server.http;
    const poolPort = Number(new URL(pool.url).port);
    const dbPath = join(serverOpts.dataDir, 'flotilla.db');
    log(`server ${http}, pool ${pool.url}`);

    const call = async (method: string, path: string, body?: object | Buffer): Promise<{ status: number; json: unknown }> => {
      const raw = Buffer.isBuffer(body);
      const res = await fetch(`${http}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }) },
        ...(body === undefined ? {} : { body: raw ? new Uint8Array(body) : JSON.stringify(body) }),
        // Generous: under a loaded machine the server can take long to answer while ten agents start.
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
    };
    const step = async (method: string, path: string, body?: object | Buffer): Promise<unknown> => {
      const r = await call(method, path, body);
      if (r.status >= 300 && !(r.status === 409 && path === '/v1/models')) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    };
    /** Why a rollout did not finish: its reason and the devices' failures, for the report. */
    const rolloutStory = async (id: string): Promise<string> => {
      const view = (await call('GET', `/v1/rollouts/${id}`)).json as { state: string; reason?: string | null; counts: Record<string, number> };
      const events = (await call('GET', `/v1/rollouts/${id}/events?devices=true&limit=1000`)).json as { items: Array<{ ts: number; kind: string; deviceId: string | null; details?: unknown }> };
      const failures = events.items
        .filter((e) => /failed|timedOut|rejected|retry|aborted/.test(e.kind))
        .map((e) => `${new Date(e.ts).toISOString().slice(11, 23)} ${e.kind} ${e.deviceId ?? ''} ${JSON.stringify(e.details ?? {})}`);
      return `${view.state} (${view.reason ?? ''}) ${JSON.stringify(view.counts)}; ${failures.slice(-12).join(' | ')}`;
    };
    const publish = async (card: ModelCard, version: string): Promise<void> => {
      const base = `/v1/models/${MODEL}/versions`;
      await step('POST', '/v1/models', { name: MODEL });
      await step('POST', base, { version, metadata: { inputs: card.inputs, outputs: card.outputs, golden: card.golden } });
      await step('POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: card.precision, constraints: {} });
      await step('PUT', `${base}/${version}/variants/cpu/artifact`, readFileSync(modelPath(BUILD_DIR, card.name)));
      await step('POST', `${base}/${version}/publish`, {});
    };

    // The fleet: each agent behind its own three proxies, in a region of its own with its own pool.
    await publish(builds[0]!, '1.0.0');
    const configPath = join(root, 'agent.json');
    // Reconnect backoff capped at 10 s (default 60 s) so a run of resets cannot push one agent's
    // reconnect past the delivery bound; keepalive stays at its default (30 s), which is what finds
    // a blackholed or half-open connection.
    writeFileSync(configPath, JSON.stringify({ mqtt: { backoff: { initialMs: 250, maxMs: 10_000, multiplier: 2 } } }));
    const mqttPort = serverOpts.mqttPort;
    for (let i = 1; i <= agentCount; i++) {
      const id = `net-${i}`;
      const [mqtt, httpProxy, poolProxy] = await Promise.all([
        FaultProxy.listen({ target: { host: '127.0.0.1', port: mqttPort } }),
        FaultProxy.listen({ target: { host: '127.0.0.1', port: serverOpts.httpPort } }),
        FaultProxy.listen({ target: { host: '127.0.0.1', port: poolPort } }),
      ]);
      edges.push({ id, dir: join(root, id), mqtt, http: httpProxy, pool: poolProxy, proc: undefined, api: '', spans: [] });
      await step('POST', '/v1/devices', { id, labels: { ...FLEET, region: `r${i}` } });
      await step('PUT', `/v1/pools/pool-r${i}`, { region: `r${i}`, endpoints: [`http://127.0.0.1:${poolProxy.port}`], models: ['mnist-cloud'], weight: 100 });
    }
    await step('PUT', `/v1/escalation-policies/${MODEL}`, { mode: 'policy', auditRate: 1, cloudModel: 'mnist-cloud', budgetMs: 400, keepExamples: 'all' });
    for (const e of edges) {
      e.proc = spawnTestAgent({
        serverUrl: `http://127.0.0.1:${e.http.port}`,
        deviceId: e.id,
        enrollmentToken: ENROLL,
        dataDir: e.dir,
        env: { FLOTILLA_MQTT_URL: `mqtt://127.0.0.1:${e.mqtt.port}`, FLOTILLA_AGENT_CONFIG: configPath },
      });
    }
    for (const e of edges) {
      e.api = (await eventually(() => localApiUrl(e.proc!.output()), (u) => u !== undefined, { what: `${e.id} local API`, timeoutMs: 600_000 }))!;
      await step('PUT', `/v1/devices/${e.id}/desired`, { models: { [MODEL]: { version: '1.0.0' } } });
    }
    for (const e of edges) {
      await eventually(
        async () => (await call('GET', `/v1/devices/${e.id}`)).json as { reported?: { models: Record<string, { state: string; version: string | null }> } | null },
        (d) => d.reported?.models[MODEL]?.state === 'healthy',
        { what: `${e.id} healthy on 1.0.0`, timeoutMs: 600_000 },
      );
    }
    log(`${edges.length} agents healthy on 1.0.0 (${Date.now() - started} ms)`);

    // (a) inference traffic: one caller per agent; every answer's request id is an event to track.
    const produced = new Map<string, Produced>();
    const answeredBy: Record<string, number> = {};
    let requests = 0;
    let failedRequests = 0;
    let notEscalated = 0;
    const card = builds[0]!;
    const body = JSON.stringify({ inputs: Object.entries(card.golden.inputs).map(([name, t]) => ({ name, shape: [1, ...t.shape.slice(1)], datatype: 'FP32', data: t.data.slice(0, 784) })) });
    edges.forEach((e, idx) => {
      loops.push(
        (async () => {
          while (running) {
            requests++;
            try {
              const res = await fetch(`${e.api}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
              const b = (await res.json()) as { parameters?: Record<string, string> };
              const by = b.parameters?.flotilla_answered_by ?? 'none';
              answeredBy[by] = (answeredBy[by] ?? 0) + 1;
              const rid = b.parameters?.flotilla_request_id;
              if (res.status !== 200) failedRequests++;
              else if (rid) produced.set(`${e.id}/${rid}`, { agent: idx, at: Date.now() });
              // Answered without escalating (no policy applied at that moment): no event to track.
              else notEscalated++;
            } catch {
              failedRequests++;
            }
            await sleep(every);
          }
        })(),
      );
    });

    // (b) rollouts, one after another, each to a fresh version.
    const rolloutIds: string[] = [];
    const rolloutStates = new Map<string, string>();
    const rolloutAborts: string[] = [];
    let draining = false;
    const loopViolations: string[] = [];
    loops.push(
      (async () => {
        let k = 1;
        while (running && !draining) {
          const id = `net-r${k}`;
          try {
            const r = await call('GET', `/v1/rollouts/${id}`);
            if (r.status === 404) {
              const version = `1.${k}.0`;
              await publish(builds[k % 2]!, version);
              const spec = { id, target: { labels: FLEET }, model: MODEL, version, stages: [{ count: 1 }, { percent: 50 }, { percent: 100 }], perDeviceTimeoutSec: 600, retries: 10 };
              const c = await call('POST', '/v1/rollouts', spec);
              if (c.status === 201 || c.status === 409) {
                if (!rolloutIds.includes(id)) rolloutIds.push(id);
              } else {
                loopViolations.push(`rollout ${id} refused: ${c.status} ${JSON.stringify(c.json)}`);
                return;
              }
            } else if (r.status === 200) {
              const { state, reason } = r.json as { state: string; reason: string | null };
              rolloutStates.set(id, state);
              if (state === 'paused' && reason?.startsWith('aborted')) {
                // Its own rules stopped it (devices failed past their retries): a decision, not a
                // hang. Kept for the report; cancelled so the next rollout can take the devices.
                rolloutAborts.push(`${id}: ${await rolloutStory(id)}`);
                await call('POST', `/v1/rollouts/${id}/cancel`, { reason: 'chaos run moves on' });
                rolloutStates.set(id, 'aborted');
                k++;
              } else if (!['running', 'awaitingApproval', 'paused'].includes(state)) {
                if (state !== 'completed') loopViolations.push(`rollout ${id} ended ${state}`);
                k++;
              }
            }
          } catch (err) {
            loopViolations.push(`rollout loop: ${(err as Error).message}`);
          }
          await sleep(500);
        }
      })(),
    );

    // What the server holds, read incrementally from its database (read-only, beside the writer).
    const onServer = new Map<string, { at: number; rows: number }>();
    let duplicateEnvelopes = 0;
    let outboxDropped = 0;
    let hardSeq = 0;
    let eventRow = 0;
    const readServer = (): void => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        for (const r of db.prepare("SELECT seq, device_id AS d, json_extract(data, '$.requestId') AS rid, received_at AS at FROM hard_examples WHERE seq > ? ORDER BY seq").all(hardSeq) as Array<{ seq: number; d: string; rid: string; at: number }>) {
          hardSeq = r.seq;
          const key = `${r.d}/${r.rid}`;
          const prev = onServer.get(key);
          onServer.set(key, { at: prev?.at ?? r.at, rows: (prev?.rows ?? 0) + 1 });
        }
        for (const r of db
          .prepare("SELECT rowid AS n, kind, json_extract(data, '$.duplicateOf') AS dup, json_extract(data, '$.count') AS count FROM device_events WHERE rowid > ? AND kind IN (?, 'outbox.dropped') ORDER BY rowid")
          .all(eventRow, HARD_EXAMPLE_EVENT) as Array<{ n: number; kind: string; dup: number | null; count: number | null }>) {
          eventRow = r.n;
          if (r.kind === HARD_EXAMPLE_EVENT && r.dup !== null) duplicateEnvelopes++;
          if (r.kind === 'outbox.dropped') outboxDropped += r.count ?? 0;
        }
      } finally {
        db.close();
      }
    };
    /** Request ids still waiting in each agent's outbox. */
    const inOutbox = (): Set<string> => {
      const waiting = new Set<string>();
      for (const e of edges) {
        const db = new Database(join(e.dir, 'agent.db'), { readonly: true, fileMustExist: true });
        try {
          for (const r of db.prepare("SELECT json_extract(data, '$.requestId') AS rid FROM outbox WHERE kind = ?").all(HARD_EXAMPLE_EVENT) as Array<{ rid: string }>) waiting.add(`${e.id}/${r.rid}`);
        } finally {
          db.close();
        }
      }
      return waiting;
    };
    const acked = new Set<string>();
    const reported = new Set<string>();
    /** Check 1 over everything answered before `cutoff`. */
    const checkAcked = (cutoff: number): string[] => {
      const v: string[] = [];
      const waiting = inOutbox();
      readServer();
      for (const [key, p] of produced) {
        if (p.at >= cutoff || waiting.has(key)) continue;
        acked.add(key);
        if (reported.has(key)) continue;
        const s = onServer.get(key);
        if (!s) {
          v.push(`acknowledged event ${key} missing on the server`);
          reported.add(key);
        } else if (s.rows > 1) {
          v.push(`event ${key} stored ${s.rows} times`);
          reported.add(key);
        }
      }
      return v;
    };

    const records: NetCycleRecord[] = [];
    const byLinks: Record<string, number> = {};
    const modeCycles: Record<string, number> = {};
    for (let c = 1; c <= o.cycles && Date.now() < (o.until ?? Infinity); c++) {
      const t0 = Date.now();
      const fault = pickFault(rand);
      const outageMs = Math.round(minOutage + rand() * (maxOutage - minOutage));
      const r = rand();
      const links: LinkSet = r < 0.5 ? 'server' : r < 0.75 ? 'pool' : 'both';
      const chosen = edges.filter(() => rand() < 0.5);
      if (chosen.length === 0) chosen.push(edges[Math.floor(rand() * edges.length)]!);
      const proxies = chosen.flatMap((e) => (links === 'server' ? [e.mqtt, e.http] : links === 'pool' ? [e.pool] : [e.mqtt, e.http, e.pool]));
      const start = Date.now();
      for (const p of proxies) p.setFault(fault);
      await sleep(outageMs);
      for (const p of proxies) p.clear();
      const end = Date.now();
      if (links !== 'pool') for (const e of chosen) e.spans.push({ mode: fault.mode, start, end });
      byLinks[links] = (byLinks[links] ?? 0) + 1;
      modeCycles[fault.mode] = (modeCycles[fault.mode] ?? 0) + 1;
      // A short calm between faults; the checks run in it.
      await sleep(200 + Math.floor(rand() * 600));
      const violations = [...checkAcked(Date.now() - 1000), ...loopViolations.splice(0)];
      const rec: NetCycleRecord = { cycle: c, fault, outageMs, links, agents: chosen.map((e) => e.id), acked: acked.size, produced: produced.size, violations, ms: Date.now() - t0 };
      records.push(rec);
      o.onCycle?.(rec);
    }

    // Drain: faults are over; everything answered must reach the server within its bound, and the
    // rollout in progress must finish.
    const lastClear = Math.max(started, ...edges.flatMap((e) => e.spans.map((s) => s.end)));
    const stopTraffic = Date.now();
    running = false;
    draining = true;
    await Promise.all(loops);
    const finalViolations: string[] = [...loopViolations.splice(0)];
    const drainStart = Date.now();
    log(`drain: ${produced.size} events answered, waiting for delivery and the last rollout`);
    const maxBound = Math.max(...[...produced.values()].map((p) => deliveryBound(p.at, edges[p.agent]!.spans).bound));
    const lastRollout = rolloutIds.at(-1);
    let rolloutsStuck = 0;
    for (;;) {
      readServer();
      const undelivered = [...produced.keys()].filter((k) => !onServer.has(k)).length;
      const view = lastRollout ? ((await call('GET', `/v1/rollouts/${lastRollout}`)).json as { state: string; reason: string | null }) : { state: 'completed', reason: null };
      const rs = view.state === 'paused' && view.reason?.startsWith('aborted') ? 'aborted' : view.state;
      if (lastRollout && rolloutStates.get(lastRollout) !== 'aborted') {
        if (rs === 'aborted') rolloutAborts.push(`${lastRollout}: ${await rolloutStory(lastRollout)}`);
        rolloutStates.set(lastRollout, rs);
      }
      const rolloutDone = !['running', 'awaitingApproval', 'paused'].includes(rs);
      if (undelivered === 0 && rolloutDone) break;
      // The rollout gets the same bound after the last fault as the events do, plus one install.
      if (Date.now() > Math.max(maxBound, lastClear + BOUND_FACTOR * maxOutage + BOUND_BASE_MS + 60_000)) {
        if (!rolloutDone) {
          rolloutsStuck++;
          finalViolations.push(`rollout ${lastRollout} still ${rs} ${Math.round((Date.now() - lastClear) / 1000)} s after the last fault`);
        }
        break;
      }
      await sleep(500);
    }
    const drainMs = Date.now() - drainStart;
    finalViolations.push(...checkAcked(stopTraffic + 1));

    // Per event: delivered within its bound? Attributed to the fault that bounds it.
    const byMode: Record<string, ModeCounts> = {};
    const counts = (mode: string): ModeCounts => (byMode[mode] ??= { cycles: modeCycles[mode] ?? 0, eventsAffected: 0, delivered: 0, lost: 0, duplicates: 0, overBound: 0, maxDelayAfterClearMs: 0, boundAtMaxMs: 0 });
    for (const m of Object.keys(modeCycles)) counts(m);
    let lost = 0;
    let duplicates = 0;
    let overBound = 0;
    for (const [key, p] of produced) {
      const spans = edges[p.agent]!.spans;
      const { bound } = deliveryBound(p.at, spans);
      const s = onServer.get(key);
      // Reported under the last fault on the agent's server link that could have held it up: one
      // that started before it arrived and ended at most 60 s before it was produced (a broken
      // connection stays broken until the agent notices).
      const span = spans.filter((x) => x.start <= (s?.at ?? bound) && x.end >= p.at - BOUND_BASE_MS).at(-1);
      const m = counts(span?.mode ?? 'none');
      m.eventsAffected++;
      if (!s) {
        m.lost++;
        lost++;
        if (finalViolations.length < 50) finalViolations.push(`event ${key} never reached the server`);
        continue;
      }
      m.delivered++;
      if (s.rows > 1) {
        m.duplicates++;
        duplicates++;
      }
      const from = span ? Math.max(span.end, p.at) : p.at;
      const delay = s.at - from;
      if (delay > m.maxDelayAfterClearMs) {
        m.maxDelayAfterClearMs = delay;
        m.boundAtMaxMs = bound - from;
      }
      if (s.at > bound) {
        m.overBound++;
        overBound++;
        if (finalViolations.length < 50) finalViolations.push(`event ${key} delivered ${s.at - bound} ms past its bound`);
      }
    }
    if (duplicateEnvelopes > 0) finalViolations.push(`${duplicateEnvelopes} hard examples arrived again in a second envelope`);
    for (const id of rolloutIds) {
      const st = rolloutStates.get(id) ?? ((await call('GET', `/v1/rollouts/${id}`)).json as { state: string }).state;
      if (st === 'completed' || st === 'aborted') continue;
      if (!finalViolations.some((v) => v.includes(id))) finalViolations.push(`rollout ${id} ended ${st}`);
      finalViolations.push(`rollout ${id}: ${await rolloutStory(id)}`);
      for (const e of edges) {
        const lines = e.proc!.output().split('\n').filter((l) => /"level":(40|50)/.test(l) && /ota|download|install/i.test(l));
        if (lines.length > 0) finalViolations.push(`${e.id}: ${lines.slice(-4).join(' // ').slice(0, 1500)}`);
      }
    }
    const proxies = { mqtt: emptyStats(), http: emptyStats(), pool: emptyStats() };
    for (const e of edges) {
      proxies.mqtt = addStats(proxies.mqtt, e.mqtt.stats());
      proxies.http = addStats(proxies.http, e.http.stats());
      proxies.pool = addStats(proxies.pool, e.pool.stats());
    }
    const violations = records.filter((r) => r.violations.length > 0).length + (finalViolations.length > 0 ? 1 : 0);
    return {
      cycles: records.length,
      requestedCycles: o.cycles,
      seed: o.seed,
      agents: edges.length,
      violations,
      totals: {
        requests,
        failedRequests,
        notEscalated,
        answeredBy,
        eventsProduced: produced.size,
        eventsAcked: acked.size,
        eventsDelivered: [...produced.keys()].filter((k) => onServer.has(k)).length,
        lost,
        duplicates,
        overBound,
        duplicateEnvelopes,
        outboxDropped,
        rolloutsCreated: rolloutIds.length,
        rolloutsCompleted: rolloutIds.filter((id) => rolloutStates.get(id) === 'completed').length,
        rolloutsAborted: rolloutAborts.length,
        rolloutsStuck,
        drainMs,
      },
      byMode,
      byLinks,
      rolloutAborts,
      proxies,
      finalViolations,
      records,
      ms: Date.now() - started,
    };
  } finally {
    running = false;
    await Promise.allSettled(loops);
    await Promise.allSettled(edges.map((e) => e.proc?.kill9()));
    await Promise.allSettled(edges.flatMap((e) => [e.mqtt.close(), e.http.close(), e.pool.close()]));
    await Promise.allSettled([server?.kill9(), pool?.kill9()]);
    rmSync(root, { recursive: true, force: true });
    rmSync(repoDir, { recursive: true, force: true });
  }
}
