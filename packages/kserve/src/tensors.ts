import { dataMatchesDatatype, parseDatatype, type Datatype, type Tensor } from './datatypes.ts';
import { KServeError } from './errors.ts';
import { invalid, readArray, readName, readObject, readParameters, readShape } from './fields.ts';
import type { DecodeLimits } from './limits.ts';
import { decodeBinaryData, encodeBinaryData, expectedByteSize } from './tensor-binary.ts';
import { decodeJsonData, encodeJsonData } from './tensor-json.ts';
import type { DecodedTensor, Parameters, WireTensor } from './wire.ts';

const BINARY_DATA_SIZE = 'binary_data_size';

/**
 * Reads the `inputs` (request) or `outputs` (response) array. Tensors whose parameters carry
 * binary_data_size take their bytes from the binary section, in the order they appear; every byte
 * of that section must be claimed exactly once.
 */
export function decodeTensors(value: unknown, binary: Uint8Array, limits: DecodeLimits, where: string): DecodedTensor[] {
  const entries = readArray(value, where, limits.maxTensors);
  const seen = new Set<string>();
  const out: DecodedTensor[] = [];
  let offset = 0;
  for (let i = 0; i < entries.length; i++) {
    const at = `${where}[${i}]`;
    const entry = readObject(entries[i], at);
    const name = readName(entry.name, `${at}.name`, limits);
    if (seen.has(name)) throw invalid(at, `repeats the tensor name ${JSON.stringify(name)}`);
    seen.add(name);
    const datatype = parseDatatype(entry.datatype, at);
    const { shape, count } = readShape(entry.shape, `${at}.shape`, limits);
    const parameters = readParameters(entry.parameters, `${at}.parameters`, limits);
    const size = parameters?.[BINARY_DATA_SIZE];
    let tensor: DecodedTensor;
    if (size !== undefined) {
      if (entry.data !== undefined) throw invalid(at, 'has both data and binary_data_size');
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${at}.parameters.binary_data_size must be a byte count`);
      }
      const expected = expectedByteSize(datatype, count);
      if (expected !== null && expected !== size) {
        throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${at}: binary_data_size ${size} but ${datatype}${JSON.stringify(shape)} needs ${expected}`);
      }
      if (offset + size > binary.byteLength) {
        throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${at}: binary_data_size runs past the end of the body`);
      }
      const data = decodeBinaryData(datatype, binary.subarray(offset, offset + size), count, limits.maxBytesElement, at);
      offset += size;
      tensor = { name, datatype, shape, data };
      const rest = withoutKey(parameters, BINARY_DATA_SIZE);
      if (rest) tensor.parameters = rest;
    } else {
      if (entry.data === undefined) throw invalid(at, 'has neither data nor binary_data_size');
      if (!Array.isArray(entry.data)) throw invalid(`${at}.data`, 'must be an array');
      const data = decodeJsonData(datatype, entry.data, count, shape.length, limits.maxBytesElement, at);
      tensor = { name, datatype, shape, data };
      if (parameters) tensor.parameters = parameters;
    }
    out.push(tensor);
  }
  if (offset !== binary.byteLength) {
    throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${binary.byteLength - offset} bytes after the JSON header belong to no tensor`);
  }
  return out;
}

function withoutKey(params: Parameters | undefined, key: string): Parameters | undefined {
  if (!params) return undefined;
  const out: Parameters = {};
  let any = false;
  for (const [k, v] of Object.entries(params)) {
    if (k === key) continue;
    out[k] = v;
    any = true;
  }
  return any ? out : undefined;
}

/** Checks a tensor about to be sent: data kind matches datatype, element count matches shape. */
export function checkOutgoing(t: Tensor, where: string): void {
  if (typeof t.name !== 'string' || t.name.length === 0) throw invalid(where, 'needs a name');
  parseDatatype(t.datatype, where);
  let count = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw invalid(`${where}.shape`, 'must hold non-negative integers');
    count *= d;
  }
  if (!dataMatchesDatatype(t.datatype, t.data)) throw invalid(where, `data is not the array kind for ${t.datatype}`);
  if (t.data.length !== count) {
    throw new KServeError('FLT_KSERVE_SHAPE_MISMATCH', `${where}: ${t.data.length} elements for shape ${JSON.stringify(t.shape)}`);
  }
}

/** Tensor → header entry, plus its bytes when it travels in the binary section. */
export function encodeTensor(t: Tensor & { parameters?: Parameters }, binary: boolean, where: string): { entry: WireTensor; chunk?: Uint8Array } {
  checkOutgoing(t, where);
  const datatype: Datatype = t.datatype;
  if (binary) {
    const chunk = encodeBinaryData(datatype, t.data);
    return {
      entry: { name: t.name, datatype, shape: t.shape, parameters: { ...t.parameters, [BINARY_DATA_SIZE]: chunk.byteLength } },
      chunk,
    };
  }
  const entry: WireTensor = { name: t.name, datatype, shape: t.shape, data: encodeJsonData(datatype, t.data, where) };
  if (t.parameters) entry.parameters = t.parameters;
  return { entry };
}
