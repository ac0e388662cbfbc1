import type { Datatype, Tensor } from './datatypes.ts';

/** Protocol parameters: a flat map of scalars. */
export type Parameters = Record<string, string | number | boolean>;

/** One input (request) or output (response) tensor as written in the JSON header. */
export interface WireTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Parameters;
  /** Row-major values; absent when the tensor travels in the binary section. */
  data?: unknown[];
}

export interface WireRequestedOutput {
  name: string;
  parameters?: Parameters;
}

/** The JSON of `POST /v2/models/{name}[/versions/{v}]/infer`. */
export interface WireInferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: WireTensor[];
  outputs?: WireRequestedOutput[];
}

export interface WireInferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: WireTensor[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** One entry of `POST /v2/repository/index` (model repository extension). */
export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  state?: string;
  reason?: string;
}

/** A tensor decoded from the wire, with the parameters it carried. */
export interface DecodedTensor extends Tensor {
  parameters?: Parameters;
}

/** An output the caller asked for, and whether it wants it in the binary section. */
export interface RequestedOutput {
  name: string;
  /** true / false when the output said so; undefined follows the request-wide default. */
  binary?: boolean;
  parameters?: Parameters;
}

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: DecodedTensor[];
  /** Absent: every output of the model. */
  outputs?: RequestedOutput[];
  /** The request-wide `binary_data_output` parameter (false when absent). */
  binaryOutput: boolean;
}

export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: DecodedTensor[];
}

/** Header that carries the length of the JSON part of a binary-extension body. */
export const HEADER_LENGTH_HEADER = 'inference-header-content-length';
