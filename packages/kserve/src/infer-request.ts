import type { Tensor } from './datatypes.ts';
import { KServeError } from './errors.ts';
import { invalid, readArray, readName, readObject, readOptionalBoolean, readOptionalString, readParameters } from './fields.ts';
import { joinBody, splitBody, type Body, type EncodedBody } from './framing.ts';
import { withLimits, type DecodeLimits } from './limits.ts';
import { decodeTensors, encodeTensor } from './tensors.ts';
import type { InferRequest, Parameters, RequestedOutput, WireInferRequest, WireRequestedOutput } from './wire.ts';

export interface DecodeOptions {
  /** Value of the Inference-Header-Content-Length header, when the body uses the binary extension. */
  headerLength?: string | number | undefined;
  limits?: Partial<DecodeLimits>;
}

/**
 * Decodes an inference request from an untrusted body. Throws only KServeError, whose code says
 * what was wrong; nothing is allocated for a tensor before its shape has passed the limits.
 */
export function decodeInferRequest(body: Body, options: DecodeOptions = {}): InferRequest {
  const limits = withLimits(options.limits);
  const { header, binary } = splitBody(body, options.headerLength, limits);
  const id = readOptionalString(header.id, 'id', limits);
  const parameters = readParameters(header.parameters, 'parameters', limits);
  const binaryOutput = readOptionalBoolean(parameters?.binary_data_output, 'parameters.binary_data_output') ?? false;
  if (header.inputs === undefined) throw invalid('inputs', 'is required');
  const inputs = decodeTensors(header.inputs, binary, limits, 'inputs');
  const request: InferRequest = { inputs, binaryOutput };
  if (id !== undefined) request.id = id;
  if (parameters) request.parameters = parameters;
  if (header.outputs !== undefined) request.outputs = readRequestedOutputs(header.outputs, limits);
  return request;
}

function readRequestedOutputs(value: unknown, limits: DecodeLimits): RequestedOutput[] {
  const entries = readArray(value, 'outputs', limits.maxTensors);
  const seen = new Set<string>();
  return entries.map((raw, i) => {
    const at = `outputs[${i}]`;
    const entry = readObject(raw, at);
    const name = readName(entry.name, `${at}.name`, limits);
    if (seen.has(name)) throw invalid(at, `repeats the output name ${JSON.stringify(name)}`);
    seen.add(name);
    const parameters = readParameters(entry.parameters, `${at}.parameters`, limits);
    const binary = readOptionalBoolean(parameters?.binary_data, `${at}.parameters.binary_data`);
    const out: RequestedOutput = { name };
    if (binary !== undefined) out.binary = binary;
    if (parameters) out.parameters = parameters;
    return out;
  });
}

export interface EncodeRequestInput {
  id?: string;
  parameters?: Parameters;
  inputs: readonly Tensor[];
  /** Outputs to ask for; absent asks for all. */
  outputs?: readonly RequestedOutput[];
  /** Ask for every output in the binary section (binary_data_output). */
  binaryOutput?: boolean;
}

/** Encodes a request; `binaryInputs` puts every input in the binary section. */
export function encodeInferRequest(request: EncodeRequestInput, options: { binaryInputs?: boolean } = {}): EncodedBody {
  if (request.inputs.length === 0) throw new KServeError('FLT_KSERVE_INVALID', 'a request needs at least one input');
  const chunks: Uint8Array[] = [];
  const inputs = request.inputs.map((t, i) => {
    const { entry, chunk } = encodeTensor(t, options.binaryInputs ?? false, `inputs[${i}]`);
    if (chunk) chunks.push(chunk);
    return entry;
  });
  const header: WireInferRequest = { inputs };
  if (request.id !== undefined) header.id = request.id;
  const parameters: Parameters = { ...request.parameters };
  if (request.binaryOutput) parameters.binary_data_output = true;
  if (Object.keys(parameters).length > 0) header.parameters = parameters;
  if (request.outputs) {
    header.outputs = request.outputs.map((o): WireRequestedOutput => {
      const p: Parameters = { ...o.parameters };
      if (o.binary !== undefined) p.binary_data = o.binary;
      return Object.keys(p).length > 0 ? { name: o.name, parameters: p } : { name: o.name };
    });
  }
  return joinBody(header, chunks);
}

/**
 * Whether the response should carry an output in the binary section: the output's own
 * binary_data parameter wins, then the request's binary_data_output.
 */
export function wantsBinaryOutput(request: Pick<InferRequest, 'outputs' | 'binaryOutput'>, name: string): boolean {
  const own = request.outputs?.find((o) => o.name === name)?.binary;
  return own ?? request.binaryOutput;
}
