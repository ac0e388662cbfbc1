import { createHash } from 'node:crypto';
import type { Tensor } from './types.ts';

/** A model's result cache: off unless `maxBytes` is above zero. */
export interface ResultCacheConfig {
  /** Bound on the bytes of cached outputs plus per-entry overhead. */
  maxBytes: number;
}

/** Bytes counted for an entry beyond its output data: key, map slot, tensor headers. */
export const ENTRY_OVERHEAD_BYTES = 256;

interface Entry {
  outputs: Tensor[];
  bytes: number;
}

export interface ResultCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
}

/**
 * A least-recently-used cache of one model's answers, bounded in bytes. Every switch of the model's
 * active version clears it and starts a new epoch: an answer computed by a request that selected
 * the old version is refused when it comes back after the switch, so no request after a switch can
 * see an answer of the version before it.
 */
export class ResultCache {
  readonly maxBytes: number;
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used first.
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #epoch = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  readonly #onEvict: (() => void) | undefined;

  constructor(config: ResultCacheConfig, onEvict?: () => void) {
    this.maxBytes = config.maxBytes;
    this.#onEvict = onEvict;
  }

  /** Changes on every clear(); a result computed under an older epoch is never stored. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The cached outputs (fresh copies: the caller may change them), or undefined on a miss. */
  get(key: string): Tensor[] | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.outputs.map(copyTensor);
  }

  /**
   * Stores a copy of the outputs under the key, evicting the least recently used entries to stay
   * within the bound. Refused (false) when the cache was cleared since `epoch` was read, or when
   * the entry alone is larger than the bound.
   */
  set(key: string, outputs: readonly Tensor[], epoch: number): boolean {
    if (epoch !== this.#epoch) return false;
    const bytes = ENTRY_OVERHEAD_BYTES + key.length + outputs.reduce((n, t) => n + tensorDataBytes(t), 0);
    if (bytes > this.maxBytes) return false;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    while (this.#bytes + bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldestKey);
      this.#bytes -= oldest.bytes;
      this.#evictions++;
      this.#onEvict?.();
    }
    this.#entries.set(key, { outputs: outputs.map(copyTensor), bytes });
    this.#bytes += bytes;
    return true;
  }

  /** Empties the cache and starts a new epoch (and new hit/miss counts: the rate is per version). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#epoch++;
    this.#hits = 0;
    this.#misses = 0;
  }

  stats(): ResultCacheStats {
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, entries: this.#entries.size, bytes: this.#bytes };
  }
}

/**
 * The cache key of a request: SHA-256 over the version, the requested outputs and every input's
 * name, datatype, shape and raw bytes, inputs in name order (a client may send them in any order).
 */
export function resultCacheKey(version: string, inputs: readonly Tensor[], outputs?: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`${version}\0${outputs ? [...outputs].sort().join(',') : '*'}\0`);
  const sorted = inputs.length > 1 ? [...inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) : inputs;
  for (const t of sorted) {
    h.update(`${t.name}\0${t.datatype}\0${t.shape.join('x')}\0`);
    if (Array.isArray(t.data)) h.update(JSON.stringify(t.data));
    else {
      const v = t.data as ArrayBufferView;
      h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
  }
  return h.digest('base64url');
}

function tensorDataBytes(t: Tensor): number {
  if (Array.isArray(t.data)) return (t.data as string[]).reduce((n, s) => n + 16 + s.length * 2, 0);
  return (t.data as ArrayBufferView).byteLength;
}

function copyTensor(t: Tensor): Tensor {
  const data = Array.isArray(t.data) ? [...(t.data as string[])] : (t.data as unknown as { slice(): typeof t.data }).slice();
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], data } as Tensor;
}
