/**
 * Closed-loop HTTP load for bench:pool and bench:agent:http, run as its own process so the load
 * does not share an event loop (or a core's time slice) with the server it measures. Jobs arrive over IPC:
 *   { url, path, body (base64), headerLength?, concurrency, durationMs } → LoadResult
 * Each of `concurrency` loops sends its next request as soon as the previous answer is read, over
 * keep-alive connections (one per loop).
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadJob {
  url: string;
  path: string;
  body: string;
  headerLength?: number;
  concurrency: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  durationMs: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time this client process spent per answered request (µs): on a shared machine, the load's own share. */
  clientCpuUsPerRequest: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  const body = Buffer.from(job.body, 'base64');
  const headers: Record<string, string> =
    job.headerLength === undefined
      ? { 'content-type': 'application/json' }
      : { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(job.headerLength) };
  const pool = new Pool(job.url, { connections: job.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const end = start + job.durationMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path: job.path, headers, body });
        await res.body.arrayBuffer();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const durationMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    statuses,
    durationMs,
    rps: (latencies.length / durationMs) * 1000,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    clientCpuUsPerRequest: Math.round(((used.user + used.system) / Math.max(1, latencies.length)) * 10) / 10,
  };
}

process.on('message', (job: LoadJob) => {
  void run(job).then((result) => process.send?.(result));
});
process.send?.({ ready: true });
