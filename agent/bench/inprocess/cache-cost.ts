/**
 * (d) Result-cache cost per request, tiny-mlp-fp32 batch 1: the lookup itself (key hash plus LRU
 * get, on a hit also the copy handed out), and through InferenceService.infer: a hit against the
 * same service without a cache, and a miss (distinct inputs, so every request also hashes, stores
 * a copy and evicts once the cache is full) against it. Variants take turns within a repetition.
 */
import { performance } from 'node:perf_hooks';
import { InferenceService, ResultCache, resultCacheKey, type Tensor } from '../../src/inference/index.ts';
import { median, quantile, round } from '../stats.ts';

export interface CacheCostParams {
  modelPath: string;
  iterations: number;
  warmup: number;
  reps: number;
}

/** Sub-microsecond operations: time batches of this many and divide. */
const BATCH = 100;

function inputOf(i: number): Tensor[] {
  const data = new Float32Array(16).map((_, j) => Math.sin(i * 16 + j));
  return [{ name: 'input', datatype: 'FP32', shape: [1, 16], data }];
}

async function timeLoop(n: number, once: (i: number) => Promise<unknown>): Promise<number[]> {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once(i);
    out[i] = (performance.now() - t) * 1000;
  }
  return out;
}

function timeBatches(n: number, once: (i: number) => unknown): number[] {
  const out: number[] = [];
  for (let b = 0; b < n / BATCH; b++) {
    const t = performance.now();
    for (let i = 0; i < BATCH; i++) once(b * BATCH + i);
    out.push(((performance.now() - t) * 1000) / BATCH);
  }
  return out;
}

export async function runCacheCost(p: CacheCostParams) {
  const spec = { model: 'tiny-mlp', version: '1', path: p.modelPath, format: 'onnx' as const, providers: ['cpu' as const] };
  const plain = new InferenceService();
  const cached = new InferenceService({ cache: { maxBytes: 1024 * 1024 } });
  await plain.load(spec);
  await cached.load(spec);
  const distinct = Array.from({ length: p.iterations }, (_, i) => inputOf(i + 1));
  const same = inputOf(0);
  const outputs = (await plain.infer('tiny-mlp', same)).outputs;

  // The lookup alone, on a cache already holding answers.
  const lru = new ResultCache({ maxBytes: 1024 * 1024 });
  for (let i = 0; i < 1000; i++) lru.set(resultCacheKey('1', inputOf(i)), outputs, lru.epoch);
  const hitInput = inputOf(5);
  const lookupHit = () => lru.get(resultCacheKey('1', hitInput));
  const lookupMiss = (i: number) => lru.get(resultCacheKey('1', distinct[i % distinct.length] as Tensor[]));

  for (let i = 0; i < p.warmup; i++) {
    await plain.infer('tiny-mlp', same);
    await cached.infer('tiny-mlp', same);
    lookupHit();
  }
  type Rep = { lookupHitUs: number; lookupMissUs: number; plainP50Us: number; hitP50Us: number; missP50Us: number; hitVsPlainUs: number; missVsPlainUs: number };
  const reps: Rep[] = [];
  for (let r = 0; r < p.reps; r++) {
    const hitLookup = quantile(timeBatches(p.iterations, lookupHit), 0.5);
    const missLookup = quantile(timeBatches(p.iterations, lookupMiss), 0.5);
    // Inputs never seen before in this repetition, so every request of the miss loop is a miss.
    const fresh = Array.from({ length: p.iterations }, (_, i) => inputOf(1_000_000 * (r + 1) + i));
    const plainUs = quantile(await timeLoop(p.iterations, (i) => plain.infer('tiny-mlp', fresh[i] as Tensor[])), 0.5);
    const hitUs = quantile(await timeLoop(p.iterations, () => cached.infer('tiny-mlp', same)), 0.5);
    const missUs = quantile(await timeLoop(p.iterations, (i) => cached.infer('tiny-mlp', fresh[i] as Tensor[])), 0.5);
    const rep: Rep = {
      lookupHitUs: round(hitLookup),
      lookupMissUs: round(missLookup),
      plainP50Us: round(plainUs),
      hitP50Us: round(hitUs),
      missP50Us: round(missUs),
      hitVsPlainUs: round(hitUs - plainUs),
      missVsPlainUs: round(missUs - plainUs),
    };
    reps.push(rep);
    console.log(`  cache rep ${r + 1}: lookup hit ${rep.lookupHitUs} µs, miss ${rep.lookupMissUs} µs | infer p50 no cache ${rep.plainP50Us} µs, hit ${rep.hitP50Us} µs (${rep.hitVsPlainUs}), miss ${rep.missP50Us} µs (+${rep.missVsPlainUs})`);
  }
  await plain.close();
  await cached.close();
  const medians = Object.fromEntries((Object.keys(reps[0] ?? {}) as Array<keyof Rep>).map((k) => [k, round(median(reps.map((r) => r[k])))])) as Rep;
  return { params: { ...p, cacheMaxBytes: 1024 * 1024, batch: BATCH }, reps, medians };
}
