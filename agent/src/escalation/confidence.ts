/** Confidence scores of one probability vector, the figures the score policies compare. */
export interface Confidence {
  /** Top-1 probability. */
  maxProb: number;
  /** Top-1 minus top-2 probability (1 for a single class). */
  margin: number;
  /** −Σ p log p / log K, in [0, 1]: 0 when one class holds everything, 1 when all are equal. */
  entropy: number;
  /** Index of the top class. */
  top: number;
}

/**
 * Scores a probability vector. Probabilities are used as given (a softmax output); values at or
 * below zero add nothing to the entropy (lim p→0 of p log p is 0). K is the vector's length.
 */
export function confidence(probs: ArrayLike<number>): Confidence {
  const k = probs.length;
  let best = -Infinity;
  let second = -Infinity;
  let top = 0;
  let h = 0;
  for (let i = 0; i < k; i++) {
    const p = probs[i] as number;
    if (p > best) {
      second = best;
      best = p;
      top = i;
    } else if (p > second) {
      second = p;
    }
    if (p > 0) h -= p * Math.log(p);
  }
  return {
    maxProb: k === 0 ? 0 : best,
    margin: k <= 1 ? 1 : best - second,
    entropy: k <= 1 ? 0 : h / Math.log(k),
    top,
  };
}
