import { describe, expect, it } from 'vitest';
import { runNetFaultCycles } from './net-fault-cycles.ts';

// The CI subset of the network-fault cycles; `pnpm test:chaos:net` runs the full count (docs/network-faults.md).
const CYCLES = Number(process.env.FLOTILLA_CHAOS_NET_CI_CYCLES ?? 16);

describe('network-fault cycles (CI subset)', () => {
  it(`loses and duplicates no acknowledged event, delivers every event within its bound and leaves no rollout stuck across ${CYCLES} network faults on 3 agents`, async () => {
    const report = await runNetFaultCycles({ cycles: CYCLES, seed: 20261124, agents: 3 });
    expect(report.records.filter((r) => r.violations.length > 0)).toEqual([]);
    expect(report.finalViolations).toEqual([]);
    expect(report.cycles).toBe(CYCLES);
    expect(report.totals).toMatchObject({ lost: 0, duplicates: 0, overBound: 0, duplicateEnvelopes: 0, rolloutsStuck: 0 });
    // The workload really ran: the checks were not over empty sets.
    expect(report.totals.eventsAcked).toBeGreaterThan(0);
    expect(report.totals.eventsDelivered).toBe(report.totals.eventsProduced);
    expect(report.totals.rolloutsCreated).toBeGreaterThan(0);
    // Every rollout completed: a download that fails under a fault is retried by the agent and
    // counted once per real attempt, so no device uses up its rollout's retries (docs/network-faults.md).
    expect(report.rolloutAborts).toEqual([]);
    expect(report.totals.rolloutsCompleted).toBe(report.totals.rolloutsCreated);
  }, 15 * 60_000);
});
