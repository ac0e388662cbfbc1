import { Counter, Gauge, type Registry } from 'prom-client';
import type { ResultCacheStats } from '../result-cache.ts';

export interface CacheView {
  model: string;
  /** The active version the cache holds answers of. */
  version: string;
  stats: ResultCacheStats;
}

/** Result-cache metrics on the agent's registry: counters as they happen, sizes and hit rate read at scrape. */
export class ResultCacheMetrics {
  readonly hits: Counter<'model' | 'version'>;
  readonly misses: Counter<'model' | 'version'>;
  readonly evictions: Counter<'model'>;
  readonly clears: Counter<'model'>;

  constructor(registry: Registry, read: () => Iterable<CacheView>) {
    const registers = [registry];
    this.hits = new Counter({ name: 'flotilla_agent_inference_cache_hits_total', help: 'Requests answered from the result cache', labelNames: ['model', 'version'] as const, registers });
    this.misses = new Counter({ name: 'flotilla_agent_inference_cache_misses_total', help: 'Cacheable requests the result cache did not hold', labelNames: ['model', 'version'] as const, registers });
    this.evictions = new Counter({ name: 'flotilla_agent_inference_cache_evictions_total', help: 'Result-cache entries evicted to stay within the byte bound', labelNames: ['model'] as const, registers });
    this.clears = new Counter({ name: 'flotilla_agent_inference_cache_clears_total', help: 'Result caches emptied by a switch of the active version or an unload', labelNames: ['model'] as const, registers });
    const bytes: Gauge<'model'> = new Gauge({
      name: 'flotilla_agent_inference_cache_bytes',
      help: 'Bytes held by the result cache (outputs plus per-entry overhead)',
      labelNames: ['model'] as const,
      registers,
      collect: () => {
        bytes.reset();
        for (const c of read()) bytes.set({ model: c.model }, c.stats.bytes);
      },
    });
    const entries: Gauge<'model'> = new Gauge({
      name: 'flotilla_agent_inference_cache_entries',
      help: 'Answers held by the result cache',
      labelNames: ['model'] as const,
      registers,
      collect: () => {
        entries.reset();
        for (const c of read()) entries.set({ model: c.model }, c.stats.entries);
      },
    });
    const rate: Gauge<'model' | 'version'> = new Gauge({
      name: 'flotilla_agent_inference_cache_hit_ratio',
      help: 'Hits over lookups since the active version was switched to (absent before the first lookup)',
      labelNames: ['model', 'version'] as const,
      registers,
      collect: () => {
        rate.reset();
        for (const c of read()) {
          const lookups = c.stats.hits + c.stats.misses;
          if (lookups > 0) rate.set({ model: c.model, version: c.version }, c.stats.hits / lookups);
        }
      },
    });
  }
}
