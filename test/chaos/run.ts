/**
 * pnpm test:chaos: the full agent crash-cycle run (default 1,000 cycles; FLOTILLA_CHAOS_CYCLES to
 * change, FLOTILLA_CHAOS_SEED to replay, FLOTILLA_CHAOS_DEVICES agents cycling side by side, default 1). Prints a line per cycle and writes
 * bench-results/chaos-agent-<date>.json. Exits non-zero on any violation.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runAgentCrashCycles } from './agent-crash-cycles.ts';

const cycles = Number(process.env.FLOTILLA_CHAOS_CYCLES ?? 1000);
const seed = Number(process.env.FLOTILLA_CHAOS_SEED ?? Date.now() % 2 ** 31);
const devices = Number(process.env.FLOTILLA_CHAOS_DEVICES ?? 1);
console.log(`agent crash cycles: ${cycles}, seed ${seed}, ${devices} device(s)`);
const report = await runAgentCrashCycles({
  cycles,
  seed,
  devices,
  onCycle: (c) => console.log(`#${c.cycle} ${c.device} → ${c.target} kill at ${c.delayMs} ms (${c.phaseAtKill}); active ${c.activeVersion}, serves ${c.served}; caught up: reports ${c.reported}, serves ${c.servingAfterCatchUp} (${c.ms} ms)${c.violations.length ? ` VIOLATION: ${c.violations.join('; ')}` : ''}`),
});
const { records: _records, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
mkdirSync('bench-results', { recursive: true });
const out = join('bench-results', `chaos-agent-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(out, JSON.stringify({ machine: { cores: cpus().length, loadavg: loadavg() }, node: process.version, ...report }, null, 2) + '\n');
console.log(`wrote ${out}`);
process.exit(report.violations === 0 ? 0 : 1);
