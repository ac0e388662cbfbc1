import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.ts';

/** What the client knows of one endpoint: its breaker, requests in flight, and recent latency. */
export class EndpointState {
  readonly url: string;
  readonly breaker: CircuitBreaker;
  inflight = 0;
  /** Exponentially weighted latency of successful requests, ms (0 until the first one). */
  latencyMs = 0;
  successes = 0;
  failures = 0;

  constructor(url: string, breaker: CircuitBreakerOptions) {
    this.url = url;
    this.breaker = new CircuitBreaker(breaker);
  }

  recordSuccess(ms: number): void {
    this.successes++;
    // A fifth of each new sample: follows a slowing endpoint within a few requests, ignores one outlier.
    this.latencyMs = this.successes === 1 ? ms : this.latencyMs * 0.8 + ms * 0.2;
    this.breaker.success();
  }

  /**
   * An answer that came after its request's budget: the endpoint was already judged failed then, so
   * only the counts and latency move (a slow endpoint must not close its own circuit by answering late).
   */
  recordLateSuccess(ms: number): void {
    this.successes++;
    this.latencyMs = this.successes === 1 ? ms : this.latencyMs * 0.8 + ms * 0.2;
  }

  recordFailure(): void {
    this.failures++;
    this.breaker.failure();
  }
}

export interface EndpointStatus {
  url: string;
  state: BreakerState;
  inflight: number;
  latencyMs: number;
  successes: number;
  failures: number;
}

/**
 * The next endpoint of a pool to try: among those not yet tried for this request whose breaker lets
 * a request through, the one with the fewest requests in flight, then the lowest latency; equal
 * ones take turns (the rotation starts one further on each call).
 */
export function pickEndpoint(candidates: readonly EndpointState[], tried: ReadonlySet<string>, rotation: number): EndpointState | null {
  let best: EndpointState | null = null;
  const n = candidates.length;
  for (let i = 0; i < n; i++) {
    const ep = candidates[(rotation + i) % n] as EndpointState;
    if (tried.has(ep.url) || !ep.breaker.available()) continue;
    if (!best || ep.inflight < best.inflight || (ep.inflight === best.inflight && ep.latencyMs < best.latencyMs)) best = ep;
  }
  return best;
}
