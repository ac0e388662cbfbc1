/**
 * Closed-loop HTTP load from wrk (a C load generator, one epoll thread), for benches whose servers
 * share this machine's two cores with the load: the Node client in http-load-client.ts spends
 * 20–30 µs of CPU per request, a large share of what it measures; wrk spends a few. Same job and
 * result shapes as that client, so a bench can drive either.
 * wrk keeps `concurrency` keep-alive connections, each sending its next request when the previous
 * answer is read. Its Lua `done` hook prints the totals as one JSON line; the CPU wrk used is read
 * from the wrapping shell's /proc stat (children's user + system time) after wrk exits.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadJob, LoadResult } from './http-load-client.ts';

/** wrk on PATH, or undefined. */
export function findWrk(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const luaString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

function script(bodyFile: string, headers: Record<string, string>): string {
  return [
    `local f = assert(io.open(${luaString(bodyFile)}, "rb"))`,
    'wrk.body = f:read("*a")',
    'f:close()',
    'wrk.method = "POST"',
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    'done = function(summary, latency)',
    '  local e = summary.errors',
    '  io.write(string.format(\'\\nWRK_RESULT {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n\',',
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(99)))',
    'end',
    '',
  ].join('\n');
}

interface WrkTotals {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

export async function wrkLoad(job: LoadJob, wrk = 'wrk'): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-wrk-'));
  try {
    const bodyFile = join(dir, 'body');
    const luaFile = join(dir, 'load.lua');
    await writeFile(bodyFile, Buffer.from(job.body, 'base64'));
    const headers: Record<string, string> =
      job.headerLength === undefined
        ? { 'Content-Type': 'application/json' }
        : { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(job.headerLength) };
    await writeFile(luaFile, script(bodyFile, headers));
    // wrk takes whole seconds; a sub-second job (a warm-up) runs for one.
    const seconds = Math.max(1, Math.round(job.durationMs / 1000));
    const args = ['-t1', `-c${job.concurrency}`, `-d${seconds}s`, '-s', luaFile, `${job.url}${job.path}`];
    // The shell waits for wrk, then prints its own stat line, whose cutime/cstime hold wrk's CPU.
    const stdout = await new Promise<string>((ok, fail) =>
      execFile('sh', ['-c', '"$0" "$@" && cat /proc/$$/stat', wrk, ...args], { maxBuffer: 1 << 20 }, (err, out, errOut) =>
        err ? fail(new Error(`wrk failed: ${err.message}\n${errOut}`)) : ok(out),
      ),
    );
    const lines = stdout.trimEnd().split('\n');
    const marker = lines.find((l) => l.startsWith('WRK_RESULT '));
    if (!marker) throw new Error(`wrk printed no result:\n${stdout}`);
    const t = JSON.parse(marker.slice('WRK_RESULT '.length)) as WrkTotals;
    const stat = lines[lines.length - 1] as string;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // cutime and cstime, fields 16 and 17 of the whole line, in clock ticks of 10 ms.
    const clientCpuUs = (Number(fields[13]) + Number(fields[14])) * 10_000;
    // summary.requests counts every answer read; answers of status ≥ 400 are also counted in errors.status.
    const ok = t.requests - t.status;
    const errors = t.status + t.connect + t.read + t.write + t.timeout;
    const durationMs = t.durationUs / 1000;
    return {
      requests: ok,
      errors,
      statuses: { ok, 'status>=400': t.status },
      durationMs,
      rps: (ok / durationMs) * 1000,
      p50Ms: t.p50Us / 1000,
      p99Ms: t.p99Us / 1000,
      clientCpuUsPerRequest: Math.round((clientCpuUs / Math.max(1, ok)) * 10) / 10,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
