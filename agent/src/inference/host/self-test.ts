import type { Golden, GoldenResult } from '@flotilla/modelkit';
import type { LoadedModel, Tensor } from '../types.ts';
import { compareGolden } from './golden-compare.ts';

export interface SelfTestOptions {
  /** Runs before the judged one, so lazy allocations and kernel selection happen before traffic does (default 3). */
  warmupRuns?: number;
}

/**
 * Golden self-test of a loaded model version: warm-up runs on the golden inputs, then one judged
 * run compared with the golden outputs by the model kit's rule (max abs diff within the card's
 * tolerance; see golden-compare.ts). A run that throws is a failure, never an exception.
 */
export async function selfTest(loaded: LoadedModel, golden: Golden, opts: SelfTestOptions = {}): Promise<GoldenResult> {
  const inputs = (): Tensor[] =>
    Object.entries(golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32', shape: [...t.shape], data: Float32Array.from(t.data) }));
  let outputs: Tensor[];
  try {
    for (let i = 0; i < (opts.warmupRuns ?? 3); i++) await loaded.infer(inputs());
    outputs = await loaded.infer(inputs());
  } catch (err) {
    return { pass: false, maxAbsDiff: Infinity, tolerance: golden.tolerance, reason: `run failed: ${(err as Error).message}` };
  }
  const byName: Record<string, { data: unknown; dims: readonly number[] }> = {};
  for (const t of outputs) byName[t.name] = { data: t.data, dims: t.shape };
  return compareGolden(golden, byName);
}
