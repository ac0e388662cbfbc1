import type { Tensor } from './datatypes.ts';
import { invalid, readName, readOptionalString, readParameters } from './fields.ts';
import { joinBody, splitBody, type Body, type EncodedBody } from './framing.ts';
import type { DecodeOptions } from './infer-request.ts';
import { withLimits } from './limits.ts';
import { decodeTensors, encodeTensor } from './tensors.ts';
import type { InferResponse, Parameters, WireInferResponse } from './wire.ts';

export interface EncodeResponseInput {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: readonly (Tensor & { parameters?: Parameters })[];
}

/** Encodes a response; `binary(name)` says which outputs go in the binary section. */
export function encodeInferResponse(response: EncodeResponseInput, binary: (name: string) => boolean = () => false): EncodedBody {
  const chunks: Uint8Array[] = [];
  const outputs = response.outputs.map((t, i) => {
    const { entry, chunk } = encodeTensor(t, binary(t.name), `outputs[${i}]`);
    if (chunk) chunks.push(chunk);
    return entry;
  });
  const header: WireInferResponse = {
    model_name: response.model_name,
    ...(response.model_version !== undefined && { model_version: response.model_version }),
    ...(response.id !== undefined && { id: response.id }),
    ...(response.parameters && { parameters: response.parameters }),
    outputs,
  };
  return joinBody(header, chunks);
}

/** Decodes a response from a server Flotilla does not trust any more than a client. */
export function decodeInferResponse(body: Body, options: DecodeOptions = {}): InferResponse {
  const limits = withLimits(options.limits);
  const { header, binary } = splitBody(body, options.headerLength, limits);
  const response: InferResponse = {
    model_name: readName(header.model_name, 'model_name', limits),
    outputs: [],
  };
  const version = readOptionalString(header.model_version, 'model_version', limits);
  if (version !== undefined) response.model_version = version;
  const id = readOptionalString(header.id, 'id', limits);
  if (id !== undefined) response.id = id;
  const parameters = readParameters(header.parameters, 'parameters', limits);
  if (parameters) response.parameters = parameters;
  if (header.outputs === undefined) throw invalid('outputs', 'is required');
  response.outputs = decodeTensors(header.outputs, binary, limits, 'outputs');
  return response;
}
