import { mlpForward } from '../models/mlp.ts';
import type { Mlp } from '../models/mlp.ts';

/** Observed [min, max] of every layer's input over the calibration samples. */
export type LayerRanges = Array<[number, number]>;

/** Runs the reference forward pass over sample rows and records the range each layer sees. */
export function calibrateMlp(mlp: Mlp, samples: readonly Float32Array[]): LayerRanges {
  const ranges: LayerRanges = mlp.layers.map(() => [Infinity, -Infinity]);
  for (const x of samples) {
    const { layerInputs } = mlpForward(mlp, x);
    layerInputs.forEach((a, i) => {
      const r = ranges[i] as [number, number];
      for (const v of a) {
        if (v < r[0]) r[0] = v;
        if (v > r[1]) r[1] = v;
      }
    });
  }
  return ranges;
}
