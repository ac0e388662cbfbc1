/**
 * (c) Hot swap at a fixed request rate (open loop, 200/s): p99 over a steady window versus p99 over
 * a window of the same length in which a new version is loaded, warmed up, golden self-tested and
 * activated while traffic flows. Latency counts from each request's scheduled send time, so a
 * stalled sender shows up as latency instead of hiding as missing requests.
 */
import { performance } from 'node:perf_hooks';
import type { Golden } from '@flotilla/modelkit';
import { InferenceService } from '../../src/inference/index.ts';
import type { LoadSpec, Tensor } from '../../src/inference/types.ts';
import { median, quantile, round } from '../stats.ts';

export interface HotSwapParams {
  modelPath: string;
  golden: Golden;
  rate: number;
  windowMs: number;
  reps: number;
  /** Nice increment of a loading worker (the backend's default when absent); 0 compares with loading at full priority. */
  loadNice?: number;
}

interface WindowResult {
  requests: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  versions: Record<string, number>;
}

async function drive(service: InferenceService, input: () => Tensor[], rate: number, windowMs: number, during?: () => Promise<void>): Promise<WindowResult & { swapMs?: number }> {
  const interval = 1000 / rate;
  const total = Math.round((windowMs / 1000) * rate);
  const latencies: number[] = [];
  const versions: Record<string, number> = {};
  let failed = 0;
  const inFlight: Array<Promise<void>> = [];
  const start = performance.now();
  let swapMs: number | undefined;
  const side = during
    ? (async () => {
        await new Promise((r) => setTimeout(r, windowMs / 5));
        const t = performance.now();
        await during();
        swapMs = performance.now() - t;
      })()
    : Promise.resolve();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduled = start + sent * interval;
        sent++;
        inFlight.push(
          service.infer('mnist-edge', input()).then(
            (r) => {
              latencies.push(performance.now() - scheduled);
              versions[r.version] = (versions[r.version] ?? 0) + 1;
            },
            () => {
              failed++;
            },
          ),
        );
      }
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(inFlight);
  await side;
  return { requests: total, failed, p50Ms: round(quantile(latencies, 0.5), 3), p99Ms: round(quantile(latencies, 0.99), 3), maxMs: round(Math.max(...latencies), 3), versions, ...(swapMs !== undefined ? { swapMs: round(swapMs, 1) } : {}) };
}

export async function runHotSwap(p: HotSwapParams) {
  const spec = (version: string): LoadSpec => ({ model: 'mnist-edge', version, path: p.modelPath, format: 'onnx', providers: ['cpu'] });
  const row = new Float32Array(784).map((_, i) => ((i * 37) % 255) / 255);
  const input = (): Tensor[] => [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: row }];
  const reps = [];
  for (let r = 0; r < p.reps; r++) {
    const service = new InferenceService(p.loadNice === undefined ? {} : { onnx: { loadNice: p.loadNice } });
    await service.load(spec('1.0.0'), { golden: p.golden });
    await drive(service, input, p.rate, 500); // warm the path
    const steady = await drive(service, input, p.rate, p.windowMs);
    const swap = await drive(service, input, p.rate, p.windowMs, async () => {
      await service.stage(spec('2.0.0'), { golden: p.golden });
      service.activate('mnist-edge');
    });
    await service.close();
    const ratio = round(swap.p99Ms / steady.p99Ms, 3);
    reps.push({ steady, swap, p99Ratio: ratio });
    console.log(`  hot swap rep ${r + 1}: steady p99 ${steady.p99Ms} ms | swap window p99 ${swap.p99Ms} ms (stage+activate ${swap.swapMs} ms, versions ${JSON.stringify(swap.versions)}) | ratio ${ratio} | failed ${steady.failed + swap.failed}`);
  }
  const failed = reps.reduce((n, r) => n + r.steady.failed + r.swap.failed, 0);
  const ratio = median(reps.map((r) => r.p99Ratio));
  return {
    params: { ...p, golden: undefined },
    reps,
    medians: { steadyP99Ms: median(reps.map((r) => r.steady.p99Ms)), swapP99Ms: median(reps.map((r) => r.swap.p99Ms)), p99Ratio: ratio },
    failedRequests: failed,
    target: { failed: 0, p99Ratio: 1.2, met: failed === 0 && ratio <= 1.2 },
  };
}
