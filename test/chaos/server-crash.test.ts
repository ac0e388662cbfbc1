import { describe, expect, it } from 'vitest';
import { runServerCrashCycles } from './server-crash-cycles.ts';

// The CI subset of the server crash cycles; `pnpm test:chaos:server` runs the full count (docs/reliability.md).
const CYCLES = Number(process.env.FLOTILLA_CHAOS_SERVER_CI_CYCLES ?? 10);

describe('server crash cycles (CI subset)', () => {
  it(`keeps the database whole, every acknowledged event, enrollment and upload, and every rollout moving forward across ${CYCLES} kill -9 under load`, async () => {
    const report = await runServerCrashCycles({ cycles: CYCLES, seed: 20261123 });
    expect(report.records.filter((r) => r.violations.length > 0)).toEqual([]);
    expect(report.finalViolations).toEqual([]);
    expect(report.cycles).toBe(CYCLES);
    // The workloads really ran: the checks were not over empty sets.
    expect(report.totals.eventsAcked).toBeGreaterThan(0);
    expect(report.totals.enrollmentsAcked).toBeGreaterThan(0);
    expect(report.totals.uploadsAcked).toBeGreaterThan(0);
    expect(report.totals.rolloutsCompleted).toBeGreaterThan(0);
    expect(report.totals.rolloutsCompleted).toBe(report.totals.rolloutsCreated);
  }, 30 * 60_000);
});
