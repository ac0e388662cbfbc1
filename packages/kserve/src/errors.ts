/**
 * Codes this codec raises. They are the `FLT_KSERVE_*` entries of Flotilla's error catalogue
 * (packages/protocol/src/errors.ts, docs/errors.md); this package restates only the code and its
 * HTTP status so it stays free of dependencies (a test in the agent checks the two agree).
 */
export const KSERVE_ERROR_STATUS = {
  /** The body is not JSON, or the binary framing (header length) is broken. */
  FLT_KSERVE_MALFORMED: 400,
  /** The JSON does not match the shape of an inference request or response. */
  FLT_KSERVE_INVALID: 400,
  /** A datatype name is unknown or not one Flotilla serves. */
  FLT_KSERVE_DATATYPE: 400,
  /** The number of data elements does not match the shape. */
  FLT_KSERVE_SHAPE_MISMATCH: 400,
  /** A binary_data_size disagrees with the shape and datatype, or with the bytes that follow. */
  FLT_KSERVE_BINARY_SIZE: 400,
  /** The body, a tensor or a count is over the configured limit. */
  FLT_KSERVE_TOO_LARGE: 413,
} as const;

export type KServeErrorCode = keyof typeof KSERVE_ERROR_STATUS;

export const KSERVE_ERROR_CODES = Object.keys(KSERVE_ERROR_STATUS) as KServeErrorCode[];

/** The only error the codec throws on bad input. */
export class KServeError extends Error {
  readonly code: KServeErrorCode;
  readonly statusCode: number;

  constructor(code: KServeErrorCode, message: string) {
    super(message);
    this.name = 'KServeError';
    this.code = code;
    this.statusCode = KSERVE_ERROR_STATUS[code];
  }
}

export function isKServeError(err: unknown): err is KServeError {
  return err instanceof KServeError;
}
