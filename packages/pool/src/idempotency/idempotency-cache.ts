import type { PoolTimers } from '../runtime/timers.ts';

interface Entry<T> {
  fingerprint: string;
  value: Promise<T>;
  /** Infinity while the first attempt is still running. */
  expiresAt: number;
}

export type IdempotencyOutcome<T> =
  /** First time (or expired): `value` is the work's own promise. */
  | { kind: 'first'; value: Promise<T> }
  /** Same key and body within the TTL, finished or still running: the first attempt's answer. */
  | { kind: 'replay'; value: Promise<T> }
  /** Same key, different body. */
  | { kind: 'mismatch' };

export interface IdempotencyCacheOptions {
  ttlMs: number;
  maxEntries: number;
  timers: Pick<PoolTimers, 'now'>;
}

/**
 * Answers kept by idempotency key for a short TTL, so a client retrying with the same key gets the
 * first answer instead of a second run. A repeat that arrives while the first attempt still runs
 * waits for it (single flight). Failures are forgotten at once: a retry after an error runs again.
 * Expiry is lazy (no timers), and the oldest entries go first when the cache is full.
 */
export class IdempotencyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly opts: IdempotencyCacheOptions;

  constructor(opts: IdempotencyCacheOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.entries.size;
  }

  get enabled(): boolean {
    return this.opts.ttlMs > 0;
  }

  /**
   * Runs `work` unless `key` is known: a known key with the same fingerprint replays, with another
   * fingerprint is a mismatch (nothing runs). `work` is only called for a first attempt.
   */
  run(key: string, fingerprint: string, work: () => Promise<T>): IdempotencyOutcome<T> {
    const now = this.opts.timers.now();
    this.evict(now);
    const known = this.entries.get(key);
    if (known && known.expiresAt > now) {
      return known.fingerprint === fingerprint ? { kind: 'replay', value: known.value } : { kind: 'mismatch' };
    }
    if (known) this.entries.delete(key);
    const value = work();
    const entry: Entry<T> = { fingerprint, value, expiresAt: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    value.then(
      () => {
        if (this.entries.get(key) === entry) entry.expiresAt = this.opts.timers.now() + this.opts.ttlMs;
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return { kind: 'first', value };
  }

  /** Forgets every entry (the pool is closing). */
  clear(): void {
    this.entries.clear();
  }

  private evict(now: number): void {
    // Insertion order is close to expiry order; stop at the first live entry.
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}
