import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, ResultCache, resultCacheKey } from '../../src/inference/result-cache.ts';
import { InferenceService, type InferenceServiceOptions } from '../../src/inference/service/inference-service.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { buildFixtures, floatInput, type BuiltModels } from './model-fixtures.ts';

const out = (n: number, value = 1): Tensor[] => [{ name: 'y', datatype: 'FP32', shape: [1, n], data: new Float32Array(n).fill(value) }];
const entryBytes = (n: number, key: string) => ENTRY_OVERHEAD_BYTES + key.length + n * 4;

describe('ResultCache', () => {
  it('evicts the least recently used answers to stay within its byte bound', () => {
    const evicted: number[] = [];
    const cache = new ResultCache({ maxBytes: entryBytes(16, 'a') * 2 }, () => evicted.push(1));
    cache.set('a', out(16), cache.epoch);
    cache.set('b', out(16), cache.epoch);
    expect(cache.get('a')).toBeDefined(); // a is now the most recently used
    cache.set('c', out(16), cache.epoch);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
    expect(cache.stats()).toMatchObject({ entries: 2, evictions: 1, bytes: entryBytes(16, 'a') * 2, hits: 3, misses: 1 });
    expect(evicted).toHaveLength(1);
  });

  it('refuses an answer computed before a clear, and one larger than the whole bound', () => {
    const cache = new ResultCache({ maxBytes: 1024 });
    const epoch = cache.epoch;
    cache.clear();
    expect(cache.set('old', out(4), epoch)).toBe(false);
    expect(cache.get('old')).toBeUndefined();
    expect(cache.set('huge', out(1024), cache.epoch)).toBe(false);
    expect(cache.stats().entries).toBe(0);
  });

  it('hands out copies, so a caller changing its answer cannot change the cache', () => {
    const cache = new ResultCache({ maxBytes: 4096 });
    const answer = out(4, 2);
    cache.set('k', answer, cache.epoch);
    (answer[0]!.data as Float32Array)[0] = 99;
    const first = cache.get('k')!;
    (first[0]!.data as Float32Array)[1] = 99;
    expect(Array.from(cache.get('k')![0]!.data as Float32Array)).toEqual([2, 2, 2, 2]);
  });

  it('keys by version, requested outputs and every input byte, whatever the order the inputs came in', () => {
    const a: Tensor = { name: 'a', datatype: 'FP32', shape: [1, 2], data: Float32Array.from([1, 2]) };
    const b: Tensor = { name: 'b', datatype: 'INT32', shape: [2], data: Int32Array.from([3, 4]) };
    const key = resultCacheKey('1', [a, b]);
    expect(resultCacheKey('1', [b, a])).toBe(key);
    expect(resultCacheKey('2', [a, b])).not.toBe(key);
    expect(resultCacheKey('1', [a, b], ['y'])).not.toBe(key);
    expect(resultCacheKey('1', [a, { ...b, data: Int32Array.from([3, 5]) }])).not.toBe(key);
    expect(resultCacheKey('1', [a, { ...b, shape: [1, 2] }])).not.toBe(key);
  });
});

describe('InferenceService with a result cache', () => {
  let models: BuiltModels;
  beforeAll(async () => {
    models = await buildFixtures(['tiny-mlp-fp32', 'tiny-mlp-int8-static']);
  }, 180_000);
  afterAll(() => models?.cleanup());

  function service(opts: InferenceServiceOptions = {}): InferenceService {
    const s = new InferenceService({ cache: { maxBytes: 64 * 1024 }, ...opts });
    onTestFinished(() => s.close());
    return s;
  }
  const v1 = () => models.spec('tiny-mlp-fp32', { version: '1' });
  const v2 = () => models.spec('tiny-mlp-int8-static', { version: '2' });
  const values = (t: Tensor[]) => Array.from(t[0]!.data as Float32Array);

  it('answers a repeated request from the cache with the same outputs, and says so', async () => {
    const s = service();
    await s.load(v1());
    const first = await s.infer('tiny-mlp', [floatInput(1, 16, 7)]);
    const second = await s.infer('tiny-mlp', [floatInput(1, 16, 7)]);
    const other = await s.infer('tiny-mlp', [floatInput(1, 16, 8)]);
    expect(first.cache).toBe('miss');
    expect(second).toMatchObject({ cache: 'hit', version: '1' });
    expect(values(second.outputs)).toEqual(values(first.outputs));
    expect(other.cache).toBe('miss');
    const metrics = await s.registry.metrics();
    expect(metrics).toContain('flotilla_agent_inference_cache_hits_total{model="tiny-mlp",version="1"} 1');
    expect(metrics).toContain('flotilla_agent_inference_cache_misses_total{model="tiny-mlp",version="1"} 2');
    expect(metrics).toMatch(/flotilla_agent_inference_cache_hit_ratio\{model="tiny-mlp",version="1"\} 0\.333/);
  });

  it('never serves an answer of the previous version after a switch, even one that finished after it', async () => {
    const s = service();
    await s.load(v1());
    await s.stage(v2());
    const x = () => [floatInput(1, 16, 3)];
    const expectedV2 = values((await s.infer('tiny-mlp', x(), { version: '2' })).outputs);
    // Selected version 1, then the switch happens while it runs: its answer must not enter the cache.
    const inFlight = s.infer('tiny-mlp', x());
    s.activate('tiny-mlp');
    const old = await inFlight;
    expect(old).toMatchObject({ version: '1', cache: 'miss' });
    expect(values(old.outputs)).not.toEqual(expectedV2);
    const after = await s.infer('tiny-mlp', x());
    expect(after).toMatchObject({ version: '2', cache: 'miss' });
    expect(values(after.outputs)).toEqual(expectedV2);
    expect(await s.infer('tiny-mlp', x())).toMatchObject({ version: '2', cache: 'hit' });
    // A rollback empties it as well.
    s.rollback('tiny-mlp');
    const back = await s.infer('tiny-mlp', x());
    expect(back).toMatchObject({ version: '1', cache: 'miss' });
    expect(values(back.outputs)).toEqual(values(old.outputs));
    expect(await s.registry.getSingleMetricAsString('flotilla_agent_inference_cache_clears_total')).toContain('model="tiny-mlp"} 2');
  });

  it('leaves requests that name the previous version and models without a cache uncached', async () => {
    const s = service({ cache: (model) => (model === 'tiny-mlp' ? { maxBytes: 64 * 1024 } : undefined) });
    await s.load(v1());
    await s.load(v2());
    await s.load(models.spec('tiny-mlp-fp32', { model: 'plain', version: '1' }));
    expect((await s.infer('tiny-mlp', [floatInput(1, 16)], { version: '1' })).cache).toBeUndefined();
    expect((await s.infer('plain', [floatInput(1, 16)])).cache).toBeUndefined();
    expect((await s.infer('plain', [floatInput(1, 16)])).cache).toBeUndefined();
  });
});
