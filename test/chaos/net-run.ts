/**
 * The full network-fault run (default 500 cycles, 10 agents; FLOTILLA_CHAOS_NET_CYCLES and
 * FLOTILLA_CHAOS_NET_AGENTS to change, FLOTILLA_CHAOS_SEED to replay, FLOTILLA_CHAOS_NET_UNTIL
 * (ISO time) to start no cycle after it). Prints a line per cycle and writes
 * bench-results/chaos-net-<date>.json. Exits non-zero on any violation.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runNetFaultCycles } from './net-fault-cycles.ts';

const cycles = Number(process.env.FLOTILLA_CHAOS_NET_CYCLES ?? 500);
const agents = Number(process.env.FLOTILLA_CHAOS_NET_AGENTS ?? 10);
const until = process.env.FLOTILLA_CHAOS_NET_UNTIL ? Date.parse(process.env.FLOTILLA_CHAOS_NET_UNTIL) : undefined;
const seed = Number(process.env.FLOTILLA_CHAOS_SEED ?? Date.now() % 2 ** 31);
console.log(`network-fault cycles: ${cycles}, ${agents} agents, seed ${seed}`);
const report = await runNetFaultCycles({
  cycles,
  agents,
  seed,
  ...(until !== undefined ? { until } : {}),
  log: (line) => console.log(line),
  onCycle: (c) =>
    console.log(
      `#${c.cycle} ${JSON.stringify(c.fault)} ${c.outageMs} ms on ${c.links} of ${c.agents.length} agents; produced ${c.produced}, acked ${c.acked} (${c.ms} ms)${c.violations.length ? ` VIOLATION: ${c.violations.join('; ')}` : ''}`,
    ),
});
const { records: _records, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
mkdirSync('bench-results', { recursive: true });
const out = join('bench-results', `chaos-net-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(out, JSON.stringify({ machine: { cores: cpus().length, loadavg: loadavg() }, node: process.version, ...report }, null, 2) + '\n');
console.log(`wrote ${out}`);
process.exit(report.violations === 0 ? 0 : 1);
