import { SeededRandom } from '../random.ts';
import { randomMlp } from '../models/mlp.ts';
import type { Mlp } from '../models/mlp.ts';
import { MNIST_CLASSES, MNIST_PIXELS } from './dataset.ts';
import type { DigitSet } from './dataset.ts';

export interface TrainOptions {
  /** Layer sizes, input first (784) and classes last (10). */
  sizes: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-8;

/**
 * Mini-batch Adam on softmax cross-entropy, in plain TypeScript. Loops skip zero activations:
 * MNIST pixels and post-ReLU activations are mostly zero, which makes training several times
 * faster than dense loops on a small CPU.
 */
export function trainMlp(data: DigitSet, opts: TrainOptions): Mlp {
  if (opts.sizes[0] !== MNIST_PIXELS || opts.sizes[opts.sizes.length - 1] !== MNIST_CLASSES) {
    throw new RangeError(`MNIST MLP sizes must run from ${MNIST_PIXELS} to ${MNIST_CLASSES}`);
  }
  const rng = new SeededRandom(opts.seed);
  const init = randomMlp(opts.sizes, opts.seed + 1);
  // Train in float64: V8 converts on every Float32Array access, and the hot loops pay for it.
  const mlp = {
    layers: init.layers.map((l) => ({ inSize: l.inSize, outSize: l.outSize, w: Float64Array.from(l.w), b: new Float64Array(l.outSize) })),
  };
  const params = mlp.layers.flatMap((l) => [l.w, l.b]);
  const grads = params.map((p) => new Float64Array(p.length));
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const acts = mlp.layers.map((l) => new Float64Array(l.outSize));
  const deltas = mlp.layers.map((l) => new Float64Array(l.outSize));
  const pixels = Float64Array.from(data.x);
  const pixelRow = (sample: number): Float64Array => pixels.subarray(sample * MNIST_PIXELS, (sample + 1) * MNIST_PIXELS);
  const order = Array.from({ length: data.count }, (_, i) => i);
  let step = 0;

  const accumulate = (sample: number): void => {
    // Forward, keeping each layer's output (post-ReLU except the last).
    let a: Float64Array = pixelRow(sample);
    mlp.layers.forEach((layer, l) => {
      const z = acts[l] as Float64Array;
      const w = layer.w;
      const input = a;
      z.set(layer.b);
      const out = layer.outSize;
      const inSize = layer.inSize;
      for (let i = 0; i < inSize; i++) {
        const ai = input[i] as number;
        if (ai === 0) continue;
        const base = i * out;
        for (let j = 0; j < out; j++) z[j] = (z[j] as number) + ai * (w[base + j] as number);
      }
      if (l < mlp.layers.length - 1) for (let j = 0; j < out; j++) if ((z[j] as number) < 0) z[j] = 0;
      a = z;
    });
    // Softmax cross-entropy gradient: p - onehot.
    const last = deltas[deltas.length - 1] as Float64Array;
    let max = -Infinity;
    for (const zj of a) max = Math.max(max, zj);
    let sum = 0;
    for (let j = 0; j < a.length; j++) sum += (last[j] = Math.exp((a[j] as number) - max));
    for (let j = 0; j < a.length; j++) last[j] = (last[j] as number) / sum;
    const label = data.y[sample] as number;
    last[label] = (last[label] as number) - 1;
    // Backward.
    for (let l = mlp.layers.length - 1; l >= 0; l--) {
      const layer = mlp.layers[l] as (typeof mlp.layers)[number];
      const input = l === 0 ? pixelRow(sample) : (acts[l - 1] as Float64Array);
      const delta = deltas[l] as Float64Array;
      const gw = grads[2 * l] as Float64Array;
      const gb = grads[2 * l + 1] as Float64Array;
      const prev = l > 0 ? (deltas[l - 1] as Float64Array) : null;
      const out = layer.outSize;
      const inSize = layer.inSize;
      const w = layer.w;
      for (let j = 0; j < out; j++) gb[j] = (gb[j] as number) + (delta[j] as number);
      if (!prev) {
        // The first layer needs no gradient for its input.
        for (let i = 0; i < inSize; i++) {
          const ai = input[i] as number;
          if (ai === 0) continue;
          const base = i * out;
          for (let j = 0; j < out; j++) gw[base + j] = (gw[base + j] as number) + ai * (delta[j] as number);
        }
        continue;
      }
      prev.fill(0);
      for (let i = 0; i < inSize; i++) {
        const ai = input[i] as number;
        if (ai === 0) continue; // also where ReLU was inactive, so prev[i] stays 0
        const base = i * out;
        let back = 0;
        for (let j = 0; j < out; j++) {
          const dj = delta[j] as number;
          gw[base + j] = (gw[base + j] as number) + ai * dj;
          back += (w[base + j] as number) * dj;
        }
        prev[i] = back;
      }
    }
  };

  const update = (batch: number): void => {
    step++;
    const lr = (opts.learningRate * Math.sqrt(1 - BETA2 ** step)) / (1 - BETA1 ** step);
    params.forEach((p, k) => {
      const g = grads[k] as Float64Array;
      const mk = m[k] as Float64Array;
      const vk = v[k] as Float64Array;
      for (let i = 0; i < p.length; i++) {
        const gi = (g[i] as number) / batch;
        const mi = (mk[i] = BETA1 * (mk[i] as number) + (1 - BETA1) * gi);
        const vi = (vk[i] = BETA2 * (vk[i] as number) + (1 - BETA2) * gi * gi);
        p[i] = (p[i] as number) - (lr * mi) / (Math.sqrt(vi) + EPSILON);
      }
      g.fill(0);
    });
  };

  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    rng.shuffle(order);
    for (let start = 0; start < order.length; start += opts.batchSize) {
      const end = Math.min(order.length, start + opts.batchSize);
      for (let k = start; k < end; k++) accumulate(order[k] as number);
      update(end - start);
    }
  }
  return { layers: mlp.layers.map((l) => ({ inSize: l.inSize, outSize: l.outSize, w: Float32Array.from(l.w), b: Float32Array.from(l.b) })) };
}
