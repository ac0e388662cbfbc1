/**
 * `pnpm test:soak`: the full soak. FLOTILLA_SOAK_MINUTES (default 60), FLOTILLA_SOAK_DEVICES
 * (default 1,000) and FLOTILLA_SOAK_ROGUES (default 1; 0 runs the healthy fleet alone, to tell what
 * the misbehaving clients cost the healthy ones). Pass: server memory growth under 10 % (RSS and
 * heap after GC, last 10 % of the run against the first window after warm-up) and healthy devices'
 * event → ack p99 under 100 ms, judged outside the memory samples' own forced GCs.
 * Writes bench-results/soak-<date>.json, prints a table, exits 1 when a criterion fails.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runSoak } from './harness.ts';

function envNumber(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

const minutes = envNumber('FLOTILLA_SOAK_MINUTES', 60);
const devices = Math.round(envNumber('FLOTILLA_SOAK_DEVICES', 1_000));
const durationMs = Math.round(minutes * 60_000);
const rogues = process.env.FLOTILLA_SOAK_ROGUES !== '0';
const started = new Date();
console.log(`soak: ${devices} devices for ${minutes} min${rogues ? '' : ', no misbehaving clients'} (load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
const result = await runSoak({
  durationMs,
  devices,
  eventIntervalMs: 5_000,
  desiredIntervalMs: 100,
  // About a hundred samples whatever the length, at least one every 30 s.
  sampleEveryMs: Math.min(30_000, Math.max(2_000, Math.round(durationMs / 100))),
  warmupShare: 0.1,
  rogues,
  log: (line) => console.log(line),
});

const report = {
  name: 'soak',
  startedAt: started.toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAvgAtEnd: loadavg() },
  ...result,
};
mkdirSync('bench-results', { recursive: true });
const file = join('bench-results', `soak-${started.toISOString().slice(0, 16).replace(/[:T]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(report, null, 2) + '\n');

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const h = result.healthy;
console.table({
  'memory growth (RSS)': { value: `${result.memory.rssGrowth} %`, detail: `${mib(result.memory.firstWindow.rss)} → ${mib(result.memory.lastWindow.rss)}`, pass: result.memory.rssGrowth < 10 },
  'memory growth (heap after GC)': { value: `${result.memory.heapGrowth} %`, detail: `${mib(result.memory.firstWindow.heapUsed)} → ${mib(result.memory.lastWindow.heapUsed)}`, pass: result.memory.heapGrowth < 10 },
  'healthy event ack p99': { value: `${h.p99OutsideForcedGc} ms`, detail: `outside the memory samples' forced GCs (${h.acksDuringForcedGc} acks in flight during one left out); p50 ${h.p50} ms, max ${h.max} ms`, pass: result.criteria.healthyP99Under100ms },
  'healthy event ack p99, every ack': { value: `${h.p99} ms`, detail: 'the forced GCs included (read only)', pass: '' },
  'healthy events acked': { value: `${h.eventsAcked} / ${h.eventsSent}`, detail: `${h.connected} of ${h.devices} connected, ${h.unexpectedDisconnects} dropped`, pass: h.unexpectedDisconnects === 0 },
  'desired updates received': { value: `${h.desiredReceived} / ${h.desiredSent}`, detail: '', pass: true },
});
console.table(result.misbehavers);
console.table(result.server);
console.log(`wrote ${file}`);
process.exit(result.criteria.memoryGrowthUnder10pct && result.criteria.healthyP99Under100ms ? 0 : 1);
