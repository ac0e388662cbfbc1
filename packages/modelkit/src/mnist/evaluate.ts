import type * as ort from 'onnxruntime-node';
import { runFloat } from '../onnx/session.ts';
import { MNIST_CLASSES, MNIST_PIXELS } from './dataset.ts';
import type { DigitSet } from './dataset.ts';

/** Below this max-probability a prediction counts as low confidence (a candidate for the cloud). */
export const LOW_CONFIDENCE_THRESHOLD = 0.9;

export interface ClassifierMetrics {
  testSamples: number;
  testAccuracy: number;
  meanMaxProbability: number;
  lowConfidenceThreshold: number;
  /** Share of test samples whose max probability is below the threshold. */
  lowConfidenceFraction: number;
  /** Accuracy on those samples alone (0 when there are none). */
  lowConfidenceAccuracy: number;
  /** Accuracy on the rest. */
  highConfidenceAccuracy: number;
  [name: string]: number;
}

/**
 * Extra thresholds reported as `lowConfidenceFraction_pNN` / `lowConfidenceAccuracy_pNN`, so an
 * escalation policy can be tuned from the card without re-running the model.
 */
export const EXTRA_THRESHOLDS = [0.5, 0.7, 0.8];

/** Predicted class and its probability for each row of a [n, 10] probability matrix. */
export function argmaxRows(probs: Float32Array, classes = MNIST_CLASSES): Array<{ label: number; p: number }> {
  const out: Array<{ label: number; p: number }> = [];
  for (let r = 0; r * classes < probs.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if ((probs[r * classes + c] as number) > (probs[r * classes + best] as number)) best = c;
    out.push({ label: best, p: probs[r * classes + best] as number });
  }
  return out;
}

/** Runs a whole digit set through an onnxruntime session in one batch and returns the probabilities. */
export async function classify(session: ort.InferenceSession, set: DigitSet, inputName = 'input', outputName = 'probabilities'): Promise<Float32Array> {
  return runFloat(session, { name: inputName, data: set.x, dims: [set.count, MNIST_PIXELS] }, outputName);
}

/** Accuracy and confidence figures, measured by running the built model file. */
export async function measureClassifier(session: ort.InferenceSession, set: DigitSet): Promise<ClassifierMetrics> {
  const predictions = argmaxRows(await classify(session, set));
  let correct = 0;
  let low = 0;
  let lowCorrect = 0;
  let sumP = 0;
  predictions.forEach(({ label, p }, i) => {
    const ok = label === set.y[i];
    if (ok) correct++;
    sumP += p;
    if (p < LOW_CONFIDENCE_THRESHOLD) {
      low++;
      if (ok) lowCorrect++;
    }
  });
  const n = set.count;
  const extra: Record<string, number> = {};
  for (const t of EXTRA_THRESHOLDS) {
    const below = predictions.map((p, i) => ({ p: p.p, ok: p.label === set.y[i] })).filter((p) => p.p < t);
    const key = `p${Math.round(t * 100)}`;
    extra[`lowConfidenceFraction_${key}`] = below.length / n;
    extra[`lowConfidenceAccuracy_${key}`] = below.length > 0 ? below.filter((p) => p.ok).length / below.length : 0;
  }
  return {
    testSamples: n,
    testAccuracy: correct / n,
    meanMaxProbability: sumP / n,
    lowConfidenceThreshold: LOW_CONFIDENCE_THRESHOLD,
    lowConfidenceFraction: low / n,
    lowConfidenceAccuracy: low > 0 ? lowCorrect / low : 0,
    highConfidenceAccuracy: n - low > 0 ? (correct - lowCorrect) / (n - low) : 0,
    ...extra,
  };
}
