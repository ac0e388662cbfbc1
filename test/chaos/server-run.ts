/**
 * The full server crash-cycle run (default 200 cycles; FLOTILLA_CHAOS_SERVER_CYCLES to change,
 * FLOTILLA_CHAOS_SEED to replay). Prints a line per cycle and writes
 * bench-results/chaos-server-<date>.json. Exits non-zero on any violation.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runServerCrashCycles } from './server-crash-cycles.ts';

const cycles = Number(process.env.FLOTILLA_CHAOS_SERVER_CYCLES ?? 200);
// FLOTILLA_CHAOS_SERVER_UNTIL (ISO time): start no cycle after it; the report says how many ran.
const until = process.env.FLOTILLA_CHAOS_SERVER_UNTIL ? Date.parse(process.env.FLOTILLA_CHAOS_SERVER_UNTIL) : undefined;
const seed = Number(process.env.FLOTILLA_CHAOS_SEED ?? Date.now() % 2 ** 31);
console.log(`server crash cycles: ${cycles}, seed ${seed}`);
const report = await runServerCrashCycles({
  cycles,
  seed,
  ...(until !== undefined ? { until } : {}),
  onCycle: (c) =>
    console.log(
      `#${c.cycle} kill at ${c.delayMs} ms; acked ${c.eventsAcked} events, ${c.enrollmentsAcked} enrollments, ${c.uploadsAcked} uploads; rollout ${c.rollout ? `${c.rollout.id} ${c.rollout.state} stage ${c.rollout.stage}` : 'none'}; restart ${c.restartMs} ms (${c.ms} ms)${c.violations.length ? ` VIOLATION: ${c.violations.join('; ')}` : ''}`,
    ),
});
const { records: _records, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
mkdirSync('bench-results', { recursive: true });
const out = join('bench-results', `chaos-server-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(out, JSON.stringify({ machine: { cores: cpus().length, loadavg: loadavg() }, node: process.version, ...report }, null, 2) + '\n');
console.log(`wrote ${out}`);
process.exit(report.violations === 0 ? 0 : 1);
