/**
 * pnpm bench:broker [-- --quick] [-- --devices N] [--rate R --seconds S --concurrency C --reps K]
 *   [--enroll-budget S | --enroll-budget-per-device-ms M] [--mode embedded|external]
 *   [--seed-over N --seed-tail T]
 *
 * The control server with its embedded aedes broker against the same server in external mode over
 * a real mosquitto (dynamic security, provisioner `mosquitto-dynsec`), in one run, at 1,000 and
 * 10,000 simulated devices (`--quick`: 1,000 only; `--devices N`: only N). For each mode and size,
 * on a fresh server process (and a fresh mosquitto):
 *
 *   enroll     N devices over REST; in external mode each enrollment writes the device's broker
 *              account and role into dynsec before it answers, so this is the provisioning time.
 *              External fleets over --seed-over (default 2,000): all but the last --seed-tail
 *              (default 200) accounts are seeded into the dynsec file before mosquitto starts
 *              (see SEED_OVER below), and the tail's enrollment is what is timed
 *   connect    all N devices the way the agent connects (persistent session, last will, three
 *              subscriptions, retained `online` status acknowledged): time and connects/s
 *   memory     growth per connected device: the server's RSS after a full GC (embedded), the
 *              server's plus mosquitto's RSS from /proc (external)
 *   ingest     durable events at a fixed offered load (default 2,000 msg/s for 10 s, round-robin
 *              over the devices): the rate the server committed and the latency from publish to
 *              the server's `ack`, which it sends only after the SQLite commit (docs/protocol.md)
 *   fan-out    one rollout (a single 100 % stage) to every device: time from the request until the
 *              last device received its new desired state
 *
 * Prints and writes bench-results/broker.json: machine, versions, load average, every run,
 * medians and the ratios external / embedded.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD, ADMIN_USER, mosquittoPaths, startMosquitto } from '../test/external-broker/mosquitto.ts';
import { median, numberArg, pool } from './bench-kit.ts';
import { seedDynsecAccounts } from './broker/dynsec-seed.ts';
import { AckLedger, connectDevice, enrollDevices, type EnrolledDevice, type Endpoints, type SimDevice } from './broker/fleet-sim.ts';
import { childPidByName, rssOf } from './broker/proc-memory.ts';

const here = dirname(fileURLToPath(import.meta.url));
type Mode = 'embedded' | 'external';
const MODES: Mode[] = process.argv.includes('--mode') ? [process.argv[process.argv.indexOf('--mode') + 1] as Mode] : ['embedded', 'external'];

const QUICK = process.argv.includes('--quick');
const SIZES = process.argv.includes('--devices') ? [numberArg('devices', 1000)] : QUICK ? [1000] : [1000, 10_000];
// Below saturation for both modes on the 2-core development machine, so that p99 is latency and
// not a queue that grows for as long as the load lasts; --rate 2000 shows the saturated case.
const RATE = numberArg('rate', 1000);
const SECONDS = numberArg('seconds', 10);
const CONCURRENCY = numberArg('concurrency', 100);
const REPS = numberArg('reps', 1);
/**
 * No enrollment starts after this many seconds; the run goes on with the devices enrolled by then.
 * External mode provisions each device into mosquitto's dynamic security, which (in 2.0) rewrites
 * its whole JSON file after every command, so provisioning slows as accounts accumulate and 10,000
 * accounts may not fit in a bench run. The budget scales with the fleet size (`--enroll-budget-per-device-ms`,
 * default 30 ms, at least 60 s); `--enroll-budget S` fixes it for every size.
 */
const ENROLL_BUDGET_FIXED_S = process.argv.includes('--enroll-budget') ? numberArg('enroll-budget', 150) : null;
const ENROLL_BUDGET_PER_DEVICE_MS = numberArg('enroll-budget-per-device-ms', 30);
const enrollBudgetS = (n: number): number => ENROLL_BUDGET_FIXED_S ?? Math.max(60, Math.ceil((n * ENROLL_BUDGET_PER_DEVICE_MS) / 1000));
/** How long to wait for the last acks after the offered load stops. */
const DRAIN_MS = 15_000;
/**
 * External mode, fleets larger than this: all but the last SEED_TAIL devices are enrolled through a
 * server in embedded mode on the same data folder and their broker accounts written into the dynsec
 * file before mosquitto starts (broker/dynsec-seed.ts); then the external server continues from that
 * folder and the last SEED_TAIL devices enroll through the dynsec provisioner, which measures
 * enrollment with the accounts already there. `--seed-over 0` seeds every size, a large value none.
 */
const SEED_OVER = numberArg('seed-over', 2000);
const SEED_TAIL = numberArg('seed-tail', 200);
const FANOUT_DEADLINE_MS = 180_000;
const MODEL = 'digits';

interface Mem { rss: number; heapUsed: number; external: number }
interface Ready extends Endpoints { adminToken: string; memory: Mem }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 0) => +x.toFixed(digits);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** `keep`: a data folder the process uses and leaves behind, and the admin token it keeps across restarts. */
function startServer(mode: Mode, brokerUrl?: string, keep?: { dataDir: string; adminToken: string }): Promise<{ child: ChildProcess; info: Ready }> {
  const args = mode === 'external' ? ['external', brokerUrl!, ADMIN_USER, ADMIN_PASSWORD] : ['embedded'];
  const env = keep ? { ...process.env, FLT_BENCH_DATA_DIR: keep.dataDir, FLT_BENCH_ADMIN_TOKEN: keep.adminToken } : process.env;
  const child = fork(join(here, 'broker', 'server-host.ts'), args, { env, execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // A send to a server that died is reported as a failed run, not an unhandled 'error' event.
  child.on('error', (err) => console.error(`[${mode}] server process: ${String(err)}`));
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, info: m as Ready }));
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
}

function serverMemory(child: ChildProcess): Promise<Mem> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { memory: Mem }).memory));
    child.send({ cmd: 'mem' });
  });
}

function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.send({ cmd: 'exit' });
  });
}

async function api(info: Ready, method: string, path: string, body?: unknown, raw?: Buffer): Promise<unknown> {
  const res = await fetch(`${info.http}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${info.adminToken}`,
      ...(raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(raw ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A server-signed release of `digits` with one small cpu variant: what the fan-out rollout names. */
async function publishRelease(info: Ready, version: string): Promise<void> {
  await api(info, 'POST', '/v1/models', { name: MODEL });
  const base = `/v1/models/${MODEL}/versions`;
  await api(info, 'POST', base, {
    version,
    metadata: { inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 784] }], outputs: [{ name: 'logits', dtype: 'float32', shape: [-1, 10] }] },
  });
  await api(info, 'POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
  await api(info, 'PUT', `${base}/${version}/variants/cpu/artifact`, undefined, randomBytes(4096));
  await api(info, 'POST', `${base}/${version}/publish`, { signing: 'server' });
}

/** Open-loop load: `rate` events/s for `seconds`, round-robin over the devices, whatever the acks do. */
async function offerLoad(devices: SimDevice[], rate: number, seconds: number): Promise<{ sent: number; sendMs: number }> {
  const start = performance.now();
  const total = Math.round(rate * seconds);
  let sent = 0;
  let next = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      devices[next]!.sendEvent();
      next = (next + 1) % devices.length;
    }
    await sleep(5);
  }
  return { sent, sendMs: performance.now() - start };
}

async function measureIngest(devices: SimDevice[], ledger: AckLedger) {
  const { sent, sendMs } = await offerLoad(devices, RATE, SECONDS);
  const drainUntil = performance.now() + DRAIN_MS;
  while (ledger.outstanding > 0 && performance.now() < drainUntil) await sleep(20);
  const lat = [...ledger.latencies].sort((a, b) => a - b);
  const spanMs = ledger.lastAckAt - ledger.firstSentAt;
  return {
    offeredPerSec: RATE,
    sentPerSec: round((sent / sendMs) * 1000),
    committed: lat.length,
    unacked: ledger.outstanding,
    committedPerSec: round((lat.length / spanMs) * 1000),
    latencyMs: { p50: round(quantile(lat, 0.5), 2), p99: round(quantile(lat, 0.99), 2), max: round(lat[lat.length - 1] ?? NaN, 2) },
  };
}

async function measureFanout(info: Ready, devices: SimDevice[], version: string) {
  let received = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  for (const d of devices) {
    d.onDesired = () => {
      if (d.desired?.version !== version) return;
      d.onDesired = null;
      if (++received === devices.length) resolveAll();
    };
  }
  const start = performance.now();
  await api(info, 'POST', '/v1/rollouts', {
    name: `bench fan-out ${version}`,
    target: { labels: { fleet: 'bench' } },
    model: MODEL,
    version,
    stages: [{ percent: 100, bakeTimeSec: 0, successThreshold: 100 }],
    rate: { baseRatePerMin: 1_000_000 },
  });
  const acceptedMs = performance.now() - start;
  const timeout = sleep(FANOUT_DEADLINE_MS).then(() => 'timeout' as const);
  const outcome = await Promise.race([all.then(() => 'done' as const), timeout]);
  const times = devices.map((d) => (d.desired?.version === version ? d.desired.at - start : NaN)).filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
  return {
    requestMs: round(acceptedMs),
    received: times.length,
    complete: outcome === 'done',
    allReceivedMs: round(times[times.length - 1] ?? NaN),
    medianReceivedMs: round(quantile(times, 0.5)),
    devicesPerSec: round((times.length / (times[times.length - 1] ?? NaN)) * 1000),
  };
}

async function runOnce(mode: Mode, n: number, rep: number, enrollProgress: Array<{ enrolled: number; ms: number }>) {
  const stops: Array<() => Promise<void>> = [];
  const devices: SimDevice[] = [];
  let child: ChildProcess | null = null;
  try {
    let mosquittoPid: number | null = null;
    let brokerUrl: string | undefined;
    let mosqRssEmpty = 0;
    const seeded = mode === 'external' && n > SEED_OVER && n > SEED_TAIL;
    const version = `1.0.${rep}`;
    const prefix = `bench-${mode}-${n}-${rep}`;
    let bulk: EnrolledDevice[] = [];
    let bulkMs = 0;
    let keep: { dataDir: string; adminToken: string } | undefined;
    if (seeded) {
      keep = { dataDir: mkdtempSync(join(tmpdir(), 'flt-bench-broker-seed-')), adminToken: `flta_${randomBytes(24).toString('hex')}` };
      const dir = keep.dataDir;
      stops.push(async () => rmSync(dir, { recursive: true, force: true }));
      // The fleet's first n - SEED_TAIL devices: enrolled (and the release published) on the same
      // data folder, then their accounts written into dynsec in one go.
      const host = await startServer('embedded', undefined, keep);
      try {
        await publishRelease(host.info, version);
        const b0 = performance.now();
        bulk = (await enrollDevices(host.info, `${prefix}-seeded`, n - SEED_TAIL, CONCURRENCY)).devices;
        bulkMs = performance.now() - b0;
      } finally {
        await stopServer(host.child);
      }
      // An empty mosquitto's RSS, for the growth from empty that the unseeded runs report.
      const emptyStops: Array<() => Promise<void>> = [];
      await startMosquitto((fn) => emptyStops.push(fn));
      mosqRssEmpty = rssOf(childPidByName('mosquitto'));
      for (const stop of emptyStops) await stop();
      const m = await startMosquitto((fn) => stops.push(fn), { seed: (file) => seedDynsecAccounts(file, bulk) });
      brokerUrl = m.url;
      mosquittoPid = childPidByName('mosquitto');
      log(mode, n, `seeded ${bulk.length} accounts (enrolled in ${round(bulkMs)} ms through an embedded server on the same data folder); mosquitto RSS ${round(rssOf(mosquittoPid) / 2 ** 20, 1)} MiB`);
    } else if (mode === 'external') {
      const m = await startMosquitto((fn) => stops.push(fn));
      brokerUrl = m.url;
      mosquittoPid = childPidByName('mosquitto');
    }
    const started = await startServer(mode, brokerUrl, keep);
    child = started.child;
    const info = started.info;
    if (!seeded) {
      await publishRelease(info, version);
      mosqRssEmpty = mosquittoPid ? rssOf(mosquittoPid) : 0;
    }

    const t0 = performance.now();
    const toEnroll = n - bulk.length;
    const enrollment = await enrollDevices(info, prefix, toEnroll, CONCURRENCY, t0 + enrollBudgetS(toEnroll) * 1000, enrollProgress);
    const enrollMs = performance.now() - t0;
    const enrolled = [...bulk, ...enrollment.devices];
    const count = enrolled.length;
    log(mode, n, `enrolled ${enrollment.devices.length} of ${toEnroll} in ${round(enrollMs)} ms${bulk.length ? ` after ${bulk.length} seeded accounts` : ''}${enrollment.cutShort ? ` (stopped by the ${enrollBudgetS(toEnroll)} s budget)` : ''}`);

    const before = await serverMemory(child);
    const mosqBefore = mosquittoPid ? rssOf(mosquittoPid) : 0;
    const ledger = new AckLedger();
    const t1 = performance.now();
    devices.push(...(await pool(count, CONCURRENCY, (i) => connectDevice(info.mqtt, enrolled[i]!, ledger))));
    const connectMs = performance.now() - t1;
    log(mode, n, `connected ${count} in ${round(connectMs)} ms`);
    await sleep(1000); // the last retained statuses reach the server
    const after = await serverMemory(child);
    const mosqAfter = mosquittoPid ? rssOf(mosquittoPid) : 0;
    const serverKB = (after.rss - before.rss) / count / 1024;
    const mosquittoKB = (mosqAfter - mosqBefore) / count / 1024;
    // Mosquitto's RSS right after provisioning includes heap slack from rewriting the dynsec file,
    // which connections then reuse (the connect delta can come out near zero or negative). Its
    // growth from an empty broker to N connected devices, accounts included, does not depend on that.
    const mosquittoAllInKB = (mosqAfter - mosqRssEmpty) / count / 1024;

    const ingest = await measureIngest(devices, ledger);
    log(mode, n, `ingest ${JSON.stringify(ingest)}`);
    const fanout = await measureFanout(info, devices, version);
    log(mode, n, `fan-out ${JSON.stringify(fanout)}`);

    return {
      mode,
      devices: n,
      /** devices enrolled within the budget: every later phase ran with this many */
      devicesEnrolled: count,
      rep,
      /** seeded runs: the enrollments after the seeded accounts, through the provisioner */
      enroll: { devices: enrollment.devices.length, ms: round(enrollMs), perSec: round((enrollment.devices.length / enrollMs) * 1000), cutShort: enrollment.cutShort, progress: enrollment.progress },
      /** accounts written into dynsec before mosquitto started (devices enrolled through an embedded server first) */
      seeded: seeded ? { accounts: bulk.length, enrollMs: round(bulkMs) } : null,
      connect: { ms: round(connectMs), perSec: round((count / connectMs) * 1000) },
      memoryPerDeviceKB: {
        /** embedded: the server's RSS growth at connect; external: that plus mosquitto's growth from empty (accounts + sessions) */
        total: round(serverKB + (mosquittoPid ? mosquittoAllInKB : 0), 2),
        serverRss: round(serverKB, 2),
        serverHeap: round((after.heapUsed + after.external - before.heapUsed - before.external) / count / 1024, 2),
        mosquittoRssAtConnect: mosquittoPid ? round(mosquittoKB, 2) : null,
        mosquittoRssFromEmpty: mosquittoPid ? round(mosquittoAllInKB, 2) : null,
        // What the dynsec accounts themselves cost mosquitto before anyone connects.
        mosquittoAccountRss: mosquittoPid ? round((mosqBefore - mosqRssEmpty) / count / 1024, 2) : null,
      },
      ingest,
      fanout,
      loadavg1: round(loadavg()[0]!, 2),
    };
  } finally {
    await pool(devices.length, 500, (i) => devices[i]!.close());
    if (child) await stopServer(child);
    for (const stop of stops) await stop();
  }
}

function log(mode: Mode, n: number, what: string): void {
  console.error(`[${mode} ${n}] ${what}`);
}

function versions() {
  // Read from the server package's own node_modules: aedes does not export its package.json.
  const pkg = (name: string) => (JSON.parse(readFileSync(join(here, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  let mosquitto = 'unknown';
  try {
    // `mosquitto -h` prints its version line and exits non-zero.
    execFileSync(mosquittoPaths().bin, ['-h'], { stdio: 'pipe' });
  } catch (err) {
    mosquitto = String((err as { stdout?: Buffer }).stdout ?? '').split('\n')[0]?.trim() ?? 'unknown';
  }
  return { node: process.version, aedes: pkg('aedes'), mqttjs: pkg('mqtt'), mosquitto };
}

type Run = Awaited<ReturnType<typeof runOnce>>;

/** Medians over the repetitions of one mode and size. */
function summarize(runs: Run[]) {
  const m = (f: (r: Run) => number) => round(median(runs.map(f)), 2);
  return {
    devicesEnrolled: m((r) => r.devicesEnrolled),
    seededAccounts: m((r) => r.seeded?.accounts ?? 0),
    enrollMs: m((r) => r.enroll.ms),
    enrollPerSec: m((r) => r.enroll.perSec),
    connectMs: m((r) => r.connect.ms),
    connectsPerSec: m((r) => r.connect.perSec),
    memoryPerDeviceKB: m((r) => r.memoryPerDeviceKB.total),
    ingestCommittedPerSec: m((r) => r.ingest.committedPerSec),
    ingestP50Ms: m((r) => r.ingest.latencyMs.p50),
    ingestP99Ms: m((r) => r.ingest.latencyMs.p99),
    ingestUnacked: m((r) => r.ingest.unacked),
    fanoutAllMs: m((r) => r.fanout.allReceivedMs),
    fanoutDevicesPerSec: m((r) => r.fanout.devicesPerSec),
  };
}

const startedAt = new Date().toISOString();
const loadStart = loadavg().map((x) => round(x, 2));
const runs: Run[] = [];
/** Runs that failed part-way (the server or mosquitto gave up): what they measured before that. */
const failures: Array<{ mode: Mode; devices: number; rep: number; error: string; enrollProgress: Array<{ enrolled: number; ms: number }> }> = [];
for (const n of SIZES) {
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of MODES) {
      const enrollProgress: Array<{ enrolled: number; ms: number }> = [];
      try {
        const run = await runOnce(mode, n, rep, enrollProgress);
        runs.push(run);
        console.log(JSON.stringify(run));
      } catch (err) {
        failures.push({ mode, devices: n, rep, error: String(err), enrollProgress });
        log(mode, n, `failed: ${String(err)}`);
      }
    }
  }
}

const bySize = SIZES.map((n) => {
  const mine = (mode: Mode) => runs.filter((r) => r.devices === n && r.mode === mode);
  if (mine('embedded').length === 0 || mine('external').length === 0) return { devices: n, embedded: mine('embedded').length ? summarize(mine('embedded')) : null, external: mine('external').length ? summarize(mine('external')) : null, ratioExternalOverEmbedded: null };
  const embedded = summarize(mine('embedded'));
  const external = summarize(mine('external'));
  // With a different device count (the enrollment budget cut one mode short) only the enrollment
  // rate compares like with like.
  const sameCount = embedded.devicesEnrolled === external.devicesEnrolled;
  const ratio = Object.fromEntries(
    (Object.keys(embedded) as Array<keyof typeof embedded>)
      .filter((k) => k !== 'devicesEnrolled' && k !== 'seededAccounts' && k !== 'ingestUnacked' && (sameCount || k === 'enrollPerSec'))
      .map((k) => [k, embedded[k] === 0 ? null : round(external[k] / embedded[k], 2)]),
  );
  return { devices: n, sameDeviceCount: sameCount, embedded, external, ratioExternalOverEmbedded: ratio };
});

const result = {
  bench: 'broker',
  startedAt,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemGiB: round(totalmem() / 2 ** 30), loadavgAtStart: loadStart, loadavgAtEnd: loadavg().map((x) => round(x, 2)) },
  versions: versions(),
  params: { sizes: SIZES, enrollBudgetS: Object.fromEntries(SIZES.map((n) => [n, enrollBudgetS(n)])), reps: REPS, offeredEventsPerSec: RATE, seconds: SECONDS, concurrency: CONCURRENCY, drainMs: DRAIN_MS, seedOver: SEED_OVER, seedTail: SEED_TAIL, fanout: 'one rollout, single 100 % stage, bake 0' },
  summary: bySize,
  runs,
  failures,
};
const file = join(here, '..', '..', 'bench-results', 'broker.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ summary: bySize, loadavg: result.machine }, null, 2));
console.log(`written to ${file}`);
process.exit(0);
