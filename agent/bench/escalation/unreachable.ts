import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CloudClient } from '../../src/escalation/cloud-client.ts';
import { Escalator } from '../../src/escalation/escalator.ts';
import type { LocalInference } from '../../src/local-api/local-inference.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { quantile, round } from '../stats.ts';

export interface UnreachableRun {
  scenario: string;
  breaker: 'off' | 'default';
  requests: number;
  concurrency: number;
  budgetMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** max / budget: at or under 1 means every answer came within the budget. */
  maxOverBudget: number;
  overBudget: number;
  /** Local inference time of the answers (the fallback needs it; it counts against the budget). */
  localP99Ms: number;
  /** Event-loop delay while the run went (timers fire this late at worst). */
  eventLoopDelayMaxMs: number;
  eventLoopDelayP99Ms: number;
  answeredBy: Record<string, number>;
}

/**
 * Every request escalates (audit rate 1) to a cloud that cannot answer; each answer's latency is
 * measured from the call to the escalator until its result, against the budget as the floor.
 */
export async function runUnreachable(opts: {
  local: LocalInference;
  model: string;
  inputs: () => Tensor[];
  endpoint: string;
  scenario: string;
  breaker: 'off' | 'default';
  requests: number;
  concurrency: number;
  budgetMs: number;
}): Promise<UnreachableRun> {
  const cloud = new CloudClient({ probeIntervalMs: 0, ...(opts.breaker === 'off' && { breaker: { failureThreshold: Number.MAX_SAFE_INTEGER } }) });
  const escalator = new Escalator({ local: opts.local, cloud });
  escalator.configure({ [opts.model]: { policy: { auditRate: 1, budgetMs: opts.budgetMs }, routes: [{ pool: 'gone', endpoints: [opts.endpoint] }] } });
  const latencies: number[] = [];
  const answeredBy: Record<string, number> = {};
  // Warm-up outside the figures: the first connection attempts and JIT of the request path.
  for (let i = 0; i < opts.concurrency; i++) await escalator.infer(opts.model, opts.inputs());
  const local: number[] = [];
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  let next = 0;
  const worker = async () => {
    while (next < opts.requests) {
      next++;
      const t0 = performance.now();
      const r = await escalator.infer(opts.model, opts.inputs());
      latencies.push(performance.now() - t0);
      local.push(r.latencyMs);
      answeredBy[r.answeredBy] = (answeredBy[r.answeredBy] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    lag.disable();
    await cloud.close();
  }
  const max = Math.max(...latencies);
  return {
    scenario: opts.scenario,
    breaker: opts.breaker,
    requests: opts.requests,
    concurrency: opts.concurrency,
    budgetMs: opts.budgetMs,
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
    maxMs: round(max),
    maxOverBudget: round(max / opts.budgetMs, 3),
    overBudget: latencies.filter((l) => l > opts.budgetMs).length,
    localP99Ms: round(quantile(local, 0.99)),
    eventLoopDelayMaxMs: round(lag.max / 1e6),
    eventLoopDelayP99Ms: round(lag.percentile(99) / 1e6),
    answeredBy,
  };
}
