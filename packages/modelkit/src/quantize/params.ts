/** Symmetric per-tensor int8 weights: zero point 0, scale so the largest magnitude maps to 127. */
export interface QuantizedWeights {
  scale: number;
  values: Int8Array;
}

export function quantizeWeightsInt8(w: Float32Array): QuantizedWeights {
  let maxAbs = 0;
  for (const v of w) maxAbs = Math.max(maxAbs, Math.abs(v));
  const scale = Math.fround(maxAbs > 0 ? maxAbs / 127 : 1);
  const values = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) values[i] = Math.max(-127, Math.min(127, Math.round((w[i] as number) / scale)));
  return { scale, values };
}

/** Asymmetric uint8 activation quantization for an observed range. */
export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/** The range always includes 0 so that ReLU zeros and padding stay exact. */
export function activationParamsUint8(min: number, max: number): ActivationParams {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  const scale = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}
