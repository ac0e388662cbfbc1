import { describe, expect, it } from 'vitest';
import { runAgentCrashCycles } from './agent-crash-cycles.ts';

// The CI subset of the agent crash cycles; `pnpm test:chaos` runs the full count (docs/reliability.md).
const CYCLES = Number(process.env.FLOTILLA_CHAOS_CI_CYCLES ?? 50);

describe('agent crash cycles (CI subset)', () => {
  it(`leaves exactly one verified model active, serving what it reports, after ${CYCLES} kill -9 at random instants of installs`, async () => {
    const report = await runAgentCrashCycles({ cycles: CYCLES, seed: 20261123 });
    expect(report.records.filter((r) => r.violations.length > 0)).toEqual([]);
    expect(report.cycles).toBe(CYCLES);
    // The kills must land inside installs, not only before or after them.
    expect(Object.keys(report.phases).length).toBeGreaterThan(2);
  }, 30 * 60_000);
});
