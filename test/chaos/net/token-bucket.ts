import type { ProxyClock } from './clock.ts';

/**
 * Bytes per second with a bounded burst: tokens refill continuously at `rate`, up to `burst`.
 * The proxy's bandwidth cap takes from it before every write.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly clock: ProxyClock,
  ) {
    this.#tokens = burst;
    this.#at = clock.now();
  }

  #refill(): void {
    const now = this.clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
  }

  /** Takes up to `want` whole tokens; returns how many were granted (0 when empty). */
  take(want: number): number {
    this.#refill();
    const got = Math.min(want, Math.floor(this.#tokens));
    this.#tokens -= got;
    return got;
  }

  /** Milliseconds until at least one whole token is there. */
  msUntilToken(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.rate);
  }
}
