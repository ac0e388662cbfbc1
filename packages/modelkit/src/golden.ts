import * as ort from 'onnxruntime-node';
import type { Golden, GoldenTensor } from './card.ts';

/** Outcome of a golden self-test. `maxAbsDiff` is Infinity when an output is missing, misshapen or not finite. */
export interface GoldenResult {
  pass: boolean;
  maxAbsDiff: number;
  tolerance: number;
  /** Why it failed, in words; absent on a pass. */
  reason?: string;
}

/** The least a session must offer to be self-tested (an onnxruntime InferenceSession does). */
export interface RunnableSession {
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
}

/**
 * The shortest decimal that reads back as the same float32, so JSON files stay small and exact
 * (0.988 rather than 0.9879999756813049).
 */
export function shortestFloat32(value: number): number {
  const f = Math.fround(value);
  if (!Number.isFinite(f)) return f;
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(f.toPrecision(digits));
    if (Math.fround(candidate) === f) return candidate;
  }
  return Number(f.toPrecision(9));
}

export function goldenTensor(shape: readonly number[], data: ArrayLike<number>): GoldenTensor {
  return { dtype: 'float32', shape: [...shape], data: Array.from(data, shortestFloat32) };
}

/** The golden inputs as onnxruntime tensors, ready for `session.run`. */
export function goldenFeeds(golden: Golden): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(golden.inputs)) feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
  return feeds;
}

/**
 * Compares outputs with the golden ones. Pure, so a worker thread that ran the session itself can
 * use it on what it got back.
 */
export function compareToGolden(golden: Golden, outputs: Record<string, { data: unknown; dims: readonly number[] }>): GoldenResult {
  const { tolerance } = golden;
  let maxAbsDiff = 0;
  for (const [name, expected] of Object.entries(golden.outputs)) {
    const actual = outputs[name];
    if (!actual) return { pass: false, maxAbsDiff: Infinity, tolerance, reason: `missing output ${name}` };
    const data = actual.data as ArrayLike<number>;
    if (actual.dims.join(',') !== expected.shape.join(',') || data.length !== expected.data.length) {
      return { pass: false, maxAbsDiff: Infinity, tolerance, reason: `output ${name} has shape [${actual.dims.join(',')}], expected [${expected.shape.join(',')}]` };
    }
    for (let i = 0; i < data.length; i++) {
      const diff = Math.abs((data[i] as number) - (expected.data[i] as number));
      // NaN compares false with everything: count it as an infinite difference.
      if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
    }
  }
  return maxAbsDiff <= tolerance
    ? { pass: true, maxAbsDiff, tolerance }
    : { pass: false, maxAbsDiff, tolerance, reason: `max abs diff ${maxAbsDiff} exceeds tolerance ${tolerance}` };
}

/** Runs the golden inputs through a session and checks the outputs. A run that throws is a failure. */
export async function runGoldenSelfTest(session: RunnableSession, golden: Golden): Promise<GoldenResult> {
  let outputs: Awaited<ReturnType<RunnableSession['run']>>;
  try {
    outputs = await session.run(goldenFeeds(golden));
  } catch (err) {
    return { pass: false, maxAbsDiff: Infinity, tolerance: golden.tolerance, reason: `run failed: ${(err as Error).message}` };
  }
  return compareToGolden(golden, outputs);
}

/** Largest absolute element-wise difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/**
 * A tolerance a quantized build really meets: the worst difference measured against fp32, with a
 * margin for other CPUs' kernels, rounded up to two significant digits. Never below `floor`.
 */
export function toleranceFor(measuredMaxDiff: number, margin = 1.5, floor = 1e-4): number {
  const t = Math.max(measuredMaxDiff * margin, floor);
  const magnitude = 10 ** (Math.floor(Math.log10(t)) - 1);
  // The small epsilon stops float noise (1e-4 / 1e-5 = 10.000000000000002) from rounding up a step.
  return Number((Math.ceil(t / magnitude - 1e-9) * magnitude).toPrecision(2));
}
