/**
 * @flotilla/kserve: the KServe v2 / Open Inference Protocol wire format, JSON and the binary tensor
 * data extension, with strict decoding of untrusted bodies. No dependencies beyond Node; shared by
 * the agent's local API, its sidecar backend, its cloud client and the pool worker.
 */
export type { Datatype, Tensor, TensorData } from './datatypes.ts';
export { DATATYPES, ELEMENT_BYTES, isDatatype, allocate } from './datatypes.ts';
export { KServeError, KSERVE_ERROR_CODES, KSERVE_ERROR_STATUS, isKServeError } from './errors.ts';
export type { KServeErrorCode } from './errors.ts';
export { DEFAULT_LIMITS, withLimits } from './limits.ts';
export type { DecodeLimits } from './limits.ts';
export type { Body, EncodedBody } from './framing.ts';
export { decodeInferRequest, encodeInferRequest, wantsBinaryOutput } from './infer-request.ts';
export type { DecodeOptions, EncodeRequestInput } from './infer-request.ts';
export { decodeInferResponse, encodeInferResponse } from './infer-response.ts';
export type { EncodeResponseInput } from './infer-response.ts';
export { decodeErrorBody, encodeErrorBody, parseJson, parseModelMetadata, parseRepositoryIndex, parseServerMetadata } from './metadata.ts';
export { halfToNumber, numberToHalf } from './half.ts';
export { concatRows, rowsOf, sliceRows } from './tensor-rows.ts';
export { HEADER_LENGTH_HEADER } from './wire.ts';
export type {
  DecodedTensor,
  InferRequest,
  InferResponse,
  ModelMetadata,
  Parameters,
  RepositoryIndexEntry,
  RequestedOutput,
  ServerMetadata,
  TensorMetadata,
  WireInferRequest,
  WireInferResponse,
  WireRequestedOutput,
  WireTensor,
} from './wire.ts';
