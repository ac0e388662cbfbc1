/**
 * Agent crash cycles: the real agent daemon as a child process, the real server in this process.
 * Each cycle asks the device for another version (good ones, one that fails its golden self-test,
 * one that fails to load), waits a random time drawn from the length of an install, kills the agent
 * with SIGKILL, starts it again on the same data folder, and checks:
 *   1. exactly one model is active, its file is in the cache and hashes to the sha256 and length its
 *      slot records (a verified model), and it is never one of the bad builds;
 *   2. the local KServe API serves, and the version that answers is the active slot's version;
 *   3. once the agent has caught up with its desired state, the version it reports is the version
 *      that serves.
 * The phase the install had reached at the kill is read from the device's reported state just
 * before it, so the report shows where the kills landed. With `devices` > 1 that many agents, each
 * on its own data folder and device id, run their cycles side by side against the one server,
 * drawing cycle numbers from one counter until the total is reached.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnTestAgent, type AgentProcess } from '../helpers/agent-process.ts';
import { inferVersion, localApiUrl, otaBuilds, publishBuild } from '../helpers/ota-registry.ts';
import { rng } from './seeded-random.ts';

const GOOD = ['1.0.0', '1.1.0'] as const;
const BAD = ['1.2.0', '1.3.0'] as const;

export interface CrashCycleOptions {
  cycles: number;
  seed: number;
  /** Agents cycling side by side (default 1); each draws from its own generator seeded from `seed`. */
  devices?: number;
  /** Upper bound of the random kill delay (ms); by default measured from one uninterrupted install. */
  maxDelayMs?: number;
  onCycle?: (c: CycleRecord) => void;
}

export interface CycleRecord {
  cycle: number;
  device: string;
  target: string;
  delayMs: number;
  /** Reported state of the model just before the kill (`none` before any report). */
  phaseAtKill: string;
  activeVersion: string | null;
  served: string | null;
  reported: string | null;
  servingAfterCatchUp: string | null;
  violations: string[];
  ms: number;
}

export interface CrashCycleReport {
  cycles: number;
  seed: number;
  devices: number;
  maxDelayMs: number;
  violations: number;
  devicesWithoutVerifiedModel: number;
  reportedDiffersFromServing: number;
  phases: Record<string, number>;
  targets: Record<string, number>;
  records: CycleRecord[];
  ms: number;
}

interface DeviceView {
  reported: { appliedGeneration: number; models: Record<string, { version: string | null; state: string }> } | null;
  desired: { generation: number } | null;
}

interface Slot {
  version: string;
  sha256: string;
  length: number;
}

/** The active slot as committed in agent.db, read through a separate read-only connection. */
function activeSlot(dataDir: string): Slot | null {
  const path = join(dataDir, 'agent.db');
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT active FROM ota_slots WHERE model = 'digits'").get() as { active: string | null } | undefined;
    return row?.active ? (JSON.parse(row.active) as Slot) : null;
  } catch {
    return null;
  } finally {
    db.close();
  }
}

export async function runAgentCrashCycles(opts: CrashCycleOptions): Promise<CrashCycleReport> {
  const started = performance.now();
  const cards = await otaBuilds();
  const card = (n: string): ModelCard => cards.get(n)!;
  const deviceCount = Math.max(1, opts.devices ?? 1);
  const t: TestServer = await startServer();
  const records: CycleRecord[] = [];
  const dataDirs: string[] = [];
  const running = new Set<AgentProcess>();
  let nextCycle = 1;
  let maxDelayMs = opts.maxDelayMs ?? 0;
  try {
    await publishBuild(t, card('mnist-edge-int8'), 'digits', '1.0.0');
    await publishBuild(t, card('mnist-edge-fp32'), 'digits', '1.1.0');
    await publishBuild(t, card('mnist-edge-int8-bad-golden'), 'digits', '1.2.0');
    await publishBuild(t, card('mnist-edge-int8-unloadable'), 'digits', '1.3.0');

    /** One device's loop: first install, then kill cycles until the shared counter runs out. */
    const cycleDevice = async (index: number): Promise<void> => {
      const deviceId = `chaos-${index + 1}`;
      const random = rng(index === 0 ? opts.seed : (opts.seed + index * 7919) >>> 0);
      const dataDir = mkdtempSync(join(tmpdir(), 'flt-chaos-agent-'));
      dataDirs.push(dataDir);
      await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: deviceId } });
      const start = (): AgentProcess => {
        const a = spawnTestAgent({ serverUrl: t.http, deviceId, enrollmentToken: ENROLL_TOKEN, dataDir });
        running.add(a);
        void a.exited.then(() => running.delete(a));
        return a;
      };
      const device = async (): Promise<DeviceView> =>
        (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${deviceId}`, headers: auth(ADMIN_TOKEN) })).json() as DeviceView;
      const want = async (version: string): Promise<number> => {
        const res = await t.server.http.inject({ method: 'PUT', url: `/v1/devices/${deviceId}/desired`, headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version } } } });
        if (res.statusCode !== 200) throw new Error(`PUT desired ${version}: ${res.statusCode} ${res.body}`);
        return (res.json() as DeviceView).desired!.generation;
      };
      const caughtUp = (generation: number) =>
        eventually(device, (d) => (d.reported?.appliedGeneration ?? 0) >= generation && ['healthy', 'failed', 'activated'].includes(d.reported?.models.digits?.state ?? ''), {
          what: `${deviceId} caught up with generation ${generation}`,
          timeoutMs: 60_000,
        });
      const apiOf = async (a: AgentProcess): Promise<string> => (await eventually(() => localApiUrl(a.output()), (u) => u !== undefined, { what: 'local API url', timeoutMs: 60_000 }))!;

      // First install, then one uninterrupted upgrade that measures how long an install takes
      // (the first device's measurement sets the kill window for all when none is given).
      let agent = start();
      await apiOf(agent);
      await caughtUp(await want('1.0.0'));
      const t0 = performance.now();
      await caughtUp(await want('1.1.0'));
      const installMs = performance.now() - t0;
      if (maxDelayMs === 0) maxDelayMs = Math.max(100, Math.round(installMs * 1.2));
      let current = '1.1.0';

      for (let cycle = nextCycle++; cycle <= opts.cycles; cycle = nextCycle++) {
        // Mostly good upgrades, with bad builds mixed in so kills also land in self-test and load failures.
        const r = random();
        const pool = r < 0.75 ? GOOD.filter((v) => v !== current) : [...BAD];
        const target = pool[Math.floor(random() * pool.length)]!;
        const delayMs = Math.round(random() * maxDelayMs);
        const cycleStart = performance.now();
        await want(target);
        let phaseAtKill = 'none';
        const deadline = performance.now() + delayMs;
        while (performance.now() < deadline) {
          const d = await device();
          const m = d.reported?.models.digits;
          if (m) phaseAtKill = m.version === target ? m.state : `${m.state}(${m.version ?? '-'})`;
          await new Promise((res) => setTimeout(res, Math.min(15, Math.max(0, deadline - performance.now()))));
        }
        await agent.kill9();
        agent = start();
        const api = await apiOf(agent);

        const violations: string[] = [];
        const slot = activeSlot(dataDir);
        if (!slot) violations.push('no active model after restart');
        else {
          if ((BAD as readonly string[]).includes(slot.version)) violations.push(`bad build ${slot.version} is active`);
          const file = join(dataDir, 'models', 'sha256', slot.sha256);
          if (!existsSync(file)) violations.push(`active file ${slot.sha256} missing`);
          else {
            const bytes = readFileSync(file);
            if (bytes.length !== slot.length || createHash('sha256').update(bytes).digest('hex') !== slot.sha256) violations.push('active file does not verify');
          }
        }
        const served = await eventually(() => inferVersion(api, 'digits', card('mnist-edge-int8')), (v) => v !== null, { what: 'inference after restart', timeoutMs: 30_000 }).catch(() => null);
        if (served === null) violations.push('nothing serves after restart');
        // The install may move on after restart, so the slot is read again if the answer differs.
        if (slot && served !== null && served !== slot.version && served !== activeSlot(dataDir)?.version) violations.push(`serves ${served} while slot says ${slot.version}`);

        const settled = await caughtUp((await device()).desired!.generation).catch(() => null);
        const reported = settled?.reported?.models.digits?.version ?? null;
        const servingNow = await inferVersion(api, 'digits', card('mnist-edge-int8'));
        if (!settled) violations.push('did not catch up with its desired state');
        else if (reported !== servingNow) violations.push(`reports ${reported} while ${servingNow} serves`);
        current = servingNow ?? current;

        const rec: CycleRecord = { cycle, device: deviceId, target, delayMs, phaseAtKill, activeVersion: slot?.version ?? null, served, reported, servingAfterCatchUp: servingNow, violations, ms: Math.round(performance.now() - cycleStart) };
        records.push(rec);
        opts.onCycle?.(rec);
      }
    };

    // The first device measures the install before the others start, so all share one kill window.
    if (maxDelayMs === 0 && deviceCount > 1) {
      const first = cycleDevice(0);
      await Promise.race([first, eventually(() => maxDelayMs, (v) => v > 0, { what: 'install measured', timeoutMs: 120_000 })]);
      await Promise.all([first, ...Array.from({ length: deviceCount - 1 }, (_, i) => cycleDevice(i + 1))]);
    } else {
      await Promise.all(Array.from({ length: deviceCount }, (_, i) => cycleDevice(i)));
    }
    records.sort((a, b) => a.cycle - b.cycle);

    const count = (f: (r: CycleRecord) => string): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of records) out[f(r)] = (out[f(r)] ?? 0) + 1;
      return out;
    };
    return {
      cycles: records.length,
      seed: opts.seed,
      devices: deviceCount,
      maxDelayMs,
      violations: records.filter((r) => r.violations.length > 0).length,
      devicesWithoutVerifiedModel: records.filter((r) => r.violations.some((v) => /no active|missing|does not verify|nothing serves|bad build/.test(v))).length,
      reportedDiffersFromServing: records.filter((r) => r.violations.some((v) => /reports|serves .* while/.test(v))).length,
      phases: count((r) => r.phaseAtKill),
      targets: count((r) => r.target),
      records,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await Promise.allSettled([...running].map((a) => a.kill9()));
    await t.close();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
}
