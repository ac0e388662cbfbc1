import type { HealthSnapshot } from '../inference/host/health-window.ts';
import { sleep, type Timers } from '../runtime/timers.ts';

export interface HealthGateConfig {
  /** Shortest time the new version must serve before it is called healthy (ms). */
  windowMs: number;
  /** Requests the verdict wants to see; a quiet device waits up to maxWaitMs for them, then passes on no evidence of harm. */
  minRequests: number;
  /** Error rate above which the version fails, judged once minRequests were served. */
  maxErrorRate: number;
  /** p99 latency bound in ms (null: not judged). */
  maxP99Ms: number | null;
  /** Longest the gate waits for minRequests. */
  maxWaitMs: number;
  /** How often the counters are read. */
  pollMs: number;
}

export type HealthVerdict = { ok: true; snapshot: HealthSnapshot | null } | { ok: false; reason: string; snapshot: HealthSnapshot | null } | { ok: 'aborted' };

/** Judges one snapshot: a failure as soon as there is enough evidence, a pass only once the window is over. */
export function judgeHealth(cfg: HealthGateConfig, snap: HealthSnapshot | null, elapsedMs: number): HealthVerdict | undefined {
  const requests = snap?.requests ?? 0;
  if (snap && requests >= cfg.minRequests) {
    if (snap.errorRate > cfg.maxErrorRate) {
      return { ok: false, reason: `error rate ${(snap.errorRate * 100).toFixed(1)}% over ${requests} requests exceeds ${(cfg.maxErrorRate * 100).toFixed(1)}%`, snapshot: snap };
    }
    if (cfg.maxP99Ms !== null && snap.p99Ms !== null && snap.p99Ms > cfg.maxP99Ms) {
      return { ok: false, reason: `p99 latency ${snap.p99Ms.toFixed(1)} ms exceeds ${cfg.maxP99Ms} ms`, snapshot: snap };
    }
  }
  if (elapsedMs < cfg.windowMs) return undefined;
  if (requests >= cfg.minRequests || elapsedMs >= cfg.maxWaitMs) return { ok: true, snapshot: snap };
  return undefined;
}

/**
 * Watches the inference health counters of the version that just became active until they pass or
 * fail (see judgeHealth), polling on the injected timers. Resolves `aborted` when the signal fires
 * or another version became active meanwhile.
 */
export async function watchHealth(opts: {
  cfg: HealthGateConfig;
  timers: Timers;
  version: string;
  health: () => HealthSnapshot | null;
  signal: AbortSignal;
}): Promise<HealthVerdict> {
  const started = opts.timers.now();
  for (;;) {
    if (opts.signal.aborted) return { ok: 'aborted' };
    const snap = opts.health();
    if (snap && snap.version !== opts.version) return { ok: 'aborted' };
    const verdict = judgeHealth(opts.cfg, snap, opts.timers.now() - started);
    if (verdict) return verdict;
    await sleep(opts.timers, opts.cfg.pollMs, opts.signal);
  }
}
