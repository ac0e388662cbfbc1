/**
 * The fuzz suites' knobs, all from the environment so a failing run can be replayed with the line
 * the report prints. The seed is fixed by default: CI and the full run are reproducible.
 */
export const DEFAULT_SEED = 20_251_123;
export const DEFAULT_TOTAL_RUNS = 100_000;

export interface FuzzSettings {
  seed: number;
  /** Total runs of the full run, split across targets by their share. */
  totalRuns: number;
  /** Only these targets (default all). */
  targets: string[] | null;
  /** fast-check replay path of one failing run (needs one target and its seed). */
  path: string | undefined;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function fuzzSettings(env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  const targets = env.FLOTILLA_FUZZ_TARGETS ? env.FLOTILLA_FUZZ_TARGETS.split(',').map((t) => t.trim()).filter(Boolean) : null;
  const path = env.FLOTILLA_FUZZ_PATH || undefined;
  if (path && targets?.length !== 1) throw new Error('FLOTILLA_FUZZ_PATH replays one run: set FLOTILLA_FUZZ_TARGETS to exactly one target');
  const totalRuns = integer(env, 'FLOTILLA_FUZZ_RUNS', DEFAULT_TOTAL_RUNS);
  if (totalRuns < 1) throw new Error('FLOTILLA_FUZZ_RUNS must be at least 1');
  return { seed: integer(env, 'FLOTILLA_FUZZ_SEED', DEFAULT_SEED), totalRuns, targets, path };
}

/** A target's share of the total, at least one run (rounded: 0.55 × 100,000 is 55,000.000000000007 in floating point). */
export function runsFor(share: number, totalRuns: number): number {
  return Math.max(1, Math.round(share * totalRuns));
}
