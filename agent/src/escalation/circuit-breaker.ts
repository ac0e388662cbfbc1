/** closed: requests flow; open: refused until `openMs` passed; half-open: one trial at a time. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit (default 3). */
  failureThreshold?: number;
  /** How long an open circuit refuses before letting a trial through (default 5,000 ms). */
  openMs?: number;
  now: () => number;
}

/**
 * One endpoint's circuit breaker, on an injected clock. It stops a dead endpoint from eating the
 * time budget of every request: after `failureThreshold` failures in a row it refuses at once; after
 * `openMs`, or when a health probe succeeds, one trial request decides between closing and
 * opening again.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #trialInFlight = false;

  constructor(opts: CircuitBreakerOptions) {
    this.#threshold = opts.failureThreshold ?? 3;
    this.#openMs = opts.openMs ?? 5_000;
    this.#now = opts.now;
  }

  /** The state now (an open circuit whose time is up reads half-open). */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#openMs) this.#state = 'half-open';
    return this.#state;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Whether a request may go now; in half-open this claims the single trial slot. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#trialInFlight) return false;
    this.#trialInFlight = true;
    return true;
  }

  /** Whether `tryAcquire` would succeed, without claiming anything. */
  available(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half-open' && !this.#trialInFlight);
  }

  success(): void {
    this.#state = 'closed';
    this.#failures = 0;
    this.#trialInFlight = false;
  }

  failure(): void {
    this.#trialInFlight = false;
    this.#failures++;
    if (this.#state === 'half-open' || this.#failures >= this.#threshold) {
      this.#state = 'open';
      this.#openedAt = this.#now();
    }
  }

  /** A request that ended without saying anything about the endpoint (cancelled by its caller). */
  release(): void {
    this.#trialInFlight = false;
  }

  /** A health probe answered ready: let a trial through now rather than after the full open time. */
  probeSucceeded(): void {
    if (this.#state === 'open') this.#state = 'half-open';
  }
}
