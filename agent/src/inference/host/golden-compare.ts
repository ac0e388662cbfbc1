import type { Golden, GoldenResult } from '@flotilla/modelkit';

/**
 * The model kit's golden rule (`compareToGolden` in @flotilla/modelkit), restated here because
 * importing the model kit at run time costs 0.4–0.9 s of module evaluation on the agent thread,
 * a stall in the middle of a hot swap, and the agent ships without it. A test holds the two to
 * the same verdicts. Every golden output must be present with the golden shape, and the largest
 * absolute difference (NaN counts as infinite) must be within the tolerance.
 */
export function compareGolden(golden: Golden, outputs: Record<string, { data: unknown; dims: readonly number[] }>): GoldenResult {
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
      if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
    }
  }
  return maxAbsDiff <= tolerance
    ? { pass: true, maxAbsDiff, tolerance }
    : { pass: false, maxAbsDiff, tolerance, reason: `max abs diff ${maxAbsDiff} exceeds tolerance ${tolerance}` };
}
