import type { AbInterval } from '@flotilla/protocol';

/** Two-sided z quantile of the A/B comparison: 95 %. */
export const Z95 = 1.959963984540054;

export const NO_INTERVAL: AbInterval = { estimate: null, low: null, high: null };

/**
 * Wilson score interval of a proportion k / n. Unlike the plain normal interval it stays inside
 * [0, 1] and keeps a useful width at 0 or n successes, which is where error rates live.
 */
export function wilson(k: number, n: number, z = Z95): AbInterval {
  if (n <= 0) return NO_INTERVAL;
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Difference of two proportions a − b with Newcombe's hybrid score interval (his method 10): each
 * side's Wilson bounds combined in quadrature. It inherits Wilson's behaviour near 0 and 1.
 */
export function proportionDifference(ka: number, na: number, kb: number, nb: number, z = Z95): AbInterval {
  if (na <= 0 || nb <= 0) return NO_INTERVAL;
  const a = wilson(ka, na, z);
  const b = wilson(kb, nb, z);
  const pa = ka / na;
  const pb = kb / nb;
  const d = pa - pb;
  const low = d - Math.sqrt((pa - a.low!) ** 2 + (b.high! - pb) ** 2);
  const high = d + Math.sqrt((a.high! - pa) ** 2 + (pb - b.low!) ** 2);
  return { estimate: d, low, high };
}

/** Count, sum and sum of squares of a sample: what devices report so the fleet can pool them. */
export interface Moments {
  n: number;
  sum: number;
  sumSq: number;
}

/** Mean and sample variance (n − 1) from the moments; variance null below two samples. */
export function meanAndVariance(m: Moments): { mean: number | null; variance: number | null } {
  if (m.n <= 0) return { mean: null, variance: null };
  const mean = m.sum / m.n;
  if (m.n < 2) return { mean, variance: null };
  // Rounding can push a tiny variance below zero when every sample is (nearly) equal.
  return { mean, variance: Math.max(0, (m.sumSq - m.n * mean * mean) / (m.n - 1)) };
}

/** Normal-approximation interval of a mean: mean ± z·s/√n. */
export function meanInterval(m: Moments, z = Z95): AbInterval {
  const { mean, variance } = meanAndVariance(m);
  if (mean === null) return NO_INTERVAL;
  if (variance === null) return { estimate: mean, low: null, high: null };
  const half = z * Math.sqrt(variance / m.n);
  return { estimate: mean, low: mean - half, high: mean + half };
}

/**
 * Welch's interval of a difference of means a − b (unequal variances): (ma − mb) ± z·√(sa²/na + sb²/nb).
 * The normal quantile stands in for Student's t, which the A/B gate's minimum sample sizes allow.
 */
export function meanDifference(a: Moments, b: Moments, z = Z95): AbInterval {
  const x = meanAndVariance(a);
  const y = meanAndVariance(b);
  if (x.mean === null || y.mean === null) return NO_INTERVAL;
  const d = x.mean - y.mean;
  if (x.variance === null || y.variance === null) return { estimate: d, low: null, high: null };
  const half = z * Math.sqrt(x.variance / a.n + y.variance / b.n);
  return { estimate: d, low: d - half, high: d + half };
}
