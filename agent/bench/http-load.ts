/**
 * Closed-loop HTTP load generator for bench:agent:http, run as its own process so the load does not
 * share an event loop with the servers it measures. It takes jobs over IPC:
 *   { url, body, concurrency, durationMs } → { requests, errors, durationMs, rps, p50Ms, p99Ms }
 * Each of `concurrency` loops sends the next request as soon as its previous answer is read, over
 * keep-alive connections (one per loop).
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

interface Job {
  url: string;
  path: string;
  body: string;
  concurrency: number;
  durationMs: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function run(job: Job): Promise<Record<string, number>> {
  const pool = new Pool(job.url, { connections: job.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + job.durationMs;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path: job.path, headers: { 'content-type': 'application/json' }, body: job.body });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const durationMs = performance.now() - start;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    durationMs,
    rps: (latencies.length / durationMs) * 1000,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

process.on('message', (job: Job) => {
  void run(job).then((result) => process.send?.(result));
});
process.send?.({ ready: true });
