/** Caps applied while decoding untrusted bodies; anything beyond them is FLT_KSERVE_TOO_LARGE. */
export interface DecodeLimits {
  /** Whole body (JSON header plus binary section). */
  maxBodyBytes: number;
  /** JSON header of a binary-extension body. */
  maxHeaderBytes: number;
  /** Inputs or outputs in one message. */
  maxTensors: number;
  /** Elements in one tensor (product of its shape). */
  maxElements: number;
  /** Rank of one tensor. */
  maxDims: number;
  /** Length of a tensor, parameter or id name. */
  maxNameLength: number;
  /** Parameters on one object. */
  maxParameters: number;
  /** UTF-8 bytes of one BYTES element. */
  maxBytesElement: number;
}

export const DEFAULT_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxBodyBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxTensors: 64,
  maxElements: 16 * 1024 * 1024,
  maxDims: 8,
  maxNameLength: 256,
  maxParameters: 32,
  maxBytesElement: 16 * 1024 * 1024,
});

export function withLimits(partial: Partial<DecodeLimits> | undefined): DecodeLimits {
  return { ...DEFAULT_LIMITS, ...partial };
}
