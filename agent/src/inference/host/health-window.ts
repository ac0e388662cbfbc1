/** What a model version did since it became active: the OTA health gate reads this. */
export interface HealthSnapshot {
  version: string;
  /** Clock reading when the version became active. */
  since: number;
  requests: number;
  errors: number;
  /** errors / requests; 0 before the first request. */
  errorRate: number;
  /** Latency percentiles (ms) over the last `maxSamples` requests; null before the first. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** Errors by code. */
  errorsByCode: Record<string, number>;
}

/** Percentile by nearest rank over ascending `sorted`; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/**
 * Counters for one activation of one version. Latencies go into a fixed ring so a long-lived
 * version does not grow memory; counts are exact.
 */
export class HealthWindow {
  readonly version: string;
  readonly since: number;
  private requests = 0;
  private errors = 0;
  private readonly byCode: Record<string, number> = {};
  private readonly ring: Float64Array;
  private filled = 0;
  private at = 0;

  constructor(version: string, since: number, maxSamples = 4096) {
    this.version = version;
    this.since = since;
    this.ring = new Float64Array(maxSamples);
  }

  record(latencyMs: number, errorCode?: string): void {
    this.requests++;
    if (errorCode !== undefined) {
      this.errors++;
      this.byCode[errorCode] = (this.byCode[errorCode] ?? 0) + 1;
      return;
    }
    this.ring[this.at] = latencyMs;
    this.at = (this.at + 1) % this.ring.length;
    if (this.filled < this.ring.length) this.filled++;
  }

  snapshot(): HealthSnapshot {
    const sorted = Array.from(this.ring.subarray(0, this.filled)).sort((a, b) => a - b);
    return {
      version: this.version,
      since: this.since,
      requests: this.requests,
      errors: this.errors,
      errorRate: this.requests === 0 ? 0 : this.errors / this.requests,
      p50Ms: percentile(sorted, 50),
      p95Ms: percentile(sorted, 95),
      p99Ms: percentile(sorted, 99),
      errorsByCode: { ...this.byCode },
    };
  }
}
