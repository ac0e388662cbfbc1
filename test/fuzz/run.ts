import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { explain, type TargetReport } from './harness/fuzz-report.ts';
import { fuzzSettings, runsFor } from './harness/fuzz-settings.ts';
import { TARGETS, targetNamed, type FuzzTarget } from './targets/index.ts';

/**
 * The full fuzz run (`pnpm test:fuzz`): every target in its own child process, one after another,
 * with the run count split by each target's share. Prints a table, writes
 * bench-results/fuzz-<date>.json, and exits non-zero on any failure, crash or 5xx.
 */
const settings = fuzzSettings();
const targets: readonly FuzzTarget[] = settings.targets ? settings.targets.map(targetNamed) : TARGETS;
const child = fileURLToPath(new URL('./run-target.ts', import.meta.url));
const resultsDir = fileURLToPath(new URL('../../bench-results/', import.meta.url));
const timeoutS = Number(process.env.FLOTILLA_FUZZ_TARGET_TIMEOUT_S || 1800);

function crashed(target: string, runs: number, why: string, ms: number): TargetReport {
  return { target, runs, failures: 0, crashes: 1, status5xx: 0, seed: settings.seed, path: null, counterexample: null, error: why, outcomes: {}, ms };
}

async function runChild(target: FuzzTarget, runs: number): Promise<TargetReport> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-fuzz-run-'));
  const out = join(dir, 'report.json');
  const started = Date.now();
  try {
    const proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: {
        ...process.env,
        FLOTILLA_FUZZ_CHILD_TARGET: target.name,
        FLOTILLA_FUZZ_CHILD_RUNS: String(runs),
        FLOTILLA_FUZZ_CHILD_OUT: out,
        FLOTILLA_FUZZ_SEED: String(settings.seed),
        ...(settings.path ? { FLOTILLA_FUZZ_PATH: settings.path } : {}),
      },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => {
      process.stderr.write(b);
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutS * 1000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.once('exit', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    const ms = Date.now() - started;
    let report: TargetReport | null = null;
    try {
      report = JSON.parse(readFileSync(out, 'utf8')) as TargetReport;
    } catch {
      report = null;
    }
    // Wall time of the whole child: start-up, setup (servers, model builds) and the runs.
    if (report && code === 0) return { ...report, ms };
    return crashed(target.name, report?.runs ?? 0, `child exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' ? ` (killed after ${timeoutS} s?)` : ''}: ${stderr.trim().slice(-1500)}`, ms);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(reports: readonly TargetReport[]): string {
  const known = (r: TargetReport) => Object.entries(r.outcomes).reduce((a, [k, v]) => a + (k.startsWith('known:') ? v : 0), 0);
  const rows = reports.map((r) => [r.target, String(r.runs), String(r.failures), String(r.crashes), String(r.status5xx), String(known(r)), (r.ms / 1000).toFixed(1)]);
  const total = (k: 'runs' | 'failures' | 'crashes' | 'status5xx') => String(reports.reduce((a, r) => a + r[k], 0));
  rows.push(['total', total('runs'), total('failures'), total('crashes'), total('status5xx'), String(reports.reduce((a, r) => a + known(r), 0)), (reports.reduce((a, r) => a + r.ms, 0) / 1000).toFixed(1)]);
  const head = ['target', 'runs', 'failures', 'crashes', '5xx', 'known findings', 'seconds'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

console.log(`fuzz: seed ${settings.seed}, ${settings.totalRuns} runs over ${targets.map((t) => t.name).join(', ')}${settings.path ? `, replaying path ${settings.path}` : ''}`);
const reports: TargetReport[] = [];
for (const t of targets) {
  const runs = runsFor(t.share, settings.totalRuns);
  console.log(`fuzz: ${t.name}: ${runs} runs`);
  const r = await runChild(t, runs);
  reports.push(r);
  console.log(explain(r));
}

console.log(`\n${table(reports)}\n`);
const date = new Date().toISOString();
const file = join(resultsDir, `fuzz-${date.slice(0, 10)}.json`);
mkdirSync(resultsDir, { recursive: true });
const clean = reports.every((r) => r.failures === 0 && r.crashes === 0 && r.status5xx === 0);
writeFileSync(
  file,
  JSON.stringify(
    {
      date,
      command: 'pnpm test:fuzz',
      env: { FLOTILLA_FUZZ_RUNS: settings.totalRuns, FLOTILLA_FUZZ_SEED: settings.seed, FLOTILLA_FUZZ_TARGETS: settings.targets, FLOTILLA_FUZZ_PATH: settings.path ?? null },
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', platform: `${process.platform}-${process.arch}`, node: process.version },
      versions: { fastCheck: fc.__version },
      totals: {
        runs: reports.reduce((a, r) => a + r.runs, 0),
        failures: reports.reduce((a, r) => a + r.failures, 0),
        crashes: reports.reduce((a, r) => a + r.crashes, 0),
        status5xx: reports.reduce((a, r) => a + r.status5xx, 0),
        seconds: Math.round(reports.reduce((a, r) => a + r.ms, 0) / 1000),
      },
      targets: reports,
      clean,
    },
    null,
    2,
  ) + '\n',
);
console.log(`fuzz: wrote ${file}`);
process.exitCode = clean ? 0 : 1;
