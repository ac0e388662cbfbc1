import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));

interface DemoRun {
  code: number | null;
  output: string;
}

/** Runs the demo the way `pnpm demo` does (node with tsx's loader), optionally signalling it once `when` matches its output. */
function runDemo(args: string[], interrupt?: { when: RegExp; signal: NodeJS.Signals }): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let signalled = false;
    const onData = (b: Buffer): void => {
      output += b.toString();
      if (interrupt && !signalled && interrupt.when.test(output)) {
        signalled = true;
        child.kill(interrupt.signal);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

function workDirOf(output: string): string {
  const dir = /work folder (\S+)\)/.exec(output)?.[1];
  expect(dir, output).toBeDefined();
  return dir!;
}

/** Processes still running whose current folder is inside `dir`: every child of the demo runs in its own folder there. */
function processesInside(dir: string): string[] {
  if (!existsSync('/proc')) return [];
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readlinkSync(`/proc/${pid}/cwd`).startsWith(dir)) found.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('pnpm demo', () => {
  it('runs server, pool and three agents, rolls v2 out in stages, aborts and reverts v3 on its canary, and exits 0 with every check passed', async () => {
    const run = await runDemo([]);
    expect(run.code, run.output).toBe(0);
    const out = run.output;
    // The live progress: each stage of v2, the canary refusing v3, the abort and the revert.
    expect(out).toMatch(/v2 │ stage 1\/3 started/);
    expect(out).toMatch(/v2 │ stage 3\/3 completed/);
    expect(out).toMatch(/v3 │ (edge-\d) FAILED: FLT_OTA_SELFTEST_FAILED/);
    expect(out).toMatch(/v3 │ ABORTED/);
    expect(out).toMatch(/v3 │ reverted: 1 device\(s\) sent back/);
    // The summary: every device back on v2, both rollout outcomes, no failed check.
    const summary = out.slice(out.indexOf('\nSummary'));
    for (const id of ['edge-1', 'edge-2', 'edge-3']) expect(summary).toMatch(new RegExp(`${id}\\s.*2\\.0\\.0 \\(healthy\\)`));
    expect(summary).toMatch(/v3 canary/);
    expect(summary).toContain('v2 2.0.0  completed');
    expect(summary).toContain('v3 3.0.0  reverted');
    expect(summary).not.toMatch(/^\s+FAIL\s/m);
    expect(summary).toMatch(/all 7 checks passed/);
    // Nothing is left behind: no process, no work folder.
    const dir = workDirOf(out);
    expect(existsSync(dir)).toBe(false);
    expect(processesInside(dir)).toEqual([]);
  });

  it('stops every process it started and exits 130 when interrupted', async () => {
    const run = await runDemo([], { when: /pre-authorized edge-1/, signal: 'SIGINT' });
    const dir = workDirOf(run.output);
    made.push(dir);
    expect(run.code, run.output).toBe(130);
    expect(run.output).toContain('SIGINT: stopping the demo');
    expect(run.output).toMatch(/stopped .*server/);
    expect(run.output).toMatch(/Interrupted after [\d.]+ s; every process stopped/);
    expect(processesInside(dir)).toEqual([]);
    // An unfinished run keeps its logs for whoever wants to know why.
    expect(readdirSync(join(dir, 'logs'))).toContain('server.log');
  });

  it('exits 1 and says why when a step fails, with the checks it could not reach marked failed', async () => {
    const notAFolder = join(mkdtempSync(join(tmpdir(), 'flt-demo-test-')), 'file');
    made.push(join(notAFolder, '..'));
    writeFileSync(notAFolder, 'in the way of the model cache');
    const run = await runDemo(['--models', notAFolder]);
    const dir = workDirOf(run.output);
    made.push(dir);
    expect(run.code, run.output).toBe(1);
    // The server was already booting while the models were being built: it is gone too.
    expect(processesInside(dir)).toEqual([]);
    expect(run.output).toContain('The demo stopped early');
    expect(run.output).toMatch(/FAIL {2}v2 reached every device/);
    expect(run.output).toMatch(/7 of 7 checks FAILED/);
  });

  it('refuses an unknown option with exit code 2 and the usage', async () => {
    const run = await runDemo(['--fast']);
    expect(run.code).toBe(2);
    expect(run.output).toContain('unknown option --fast');
    expect(run.output).toContain('Usage: pnpm demo');
  });
});
