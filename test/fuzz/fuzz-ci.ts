import { expect } from 'vitest';
import { explain, type RunOptions, type TargetReport } from './harness/fuzz-report.ts';
import { fuzzSettings } from './harness/fuzz-settings.ts';

/**
 * The CI subset: one target at a small run count, with the full run's fixed seed
 * (FLOTILLA_FUZZ_SEED overrides it), asserting that every run finished with no failure, crash or
 * 5xx. Each test file imports only its own target, so a file loads only what that target needs.
 */
export async function expectTargetClean(run: (opts: RunOptions) => Promise<TargetReport>, runs: number): Promise<TargetReport> {
  const report = await run({ runs, seed: fuzzSettings().seed });
  expect(report.failures + report.crashes + report.status5xx, explain(report)).toBe(0);
  expect(report.runs).toBe(runs);
  return report;
}
