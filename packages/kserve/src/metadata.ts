import { parseDatatype } from './datatypes.ts';
import { KServeError } from './errors.ts';
import { isObject, readArray, readName, readObject, readOptionalString, readShape } from './fields.ts';
import { withLimits, type DecodeLimits } from './limits.ts';
import type { ModelMetadata, RepositoryIndexEntry, ServerMetadata, TensorMetadata } from './wire.ts';

/** Readers for metadata answers from a KServe v2 server (the sidecar reads these from Triton). */

function readStringList(v: unknown, where: string, limits: DecodeLimits): string[] {
  return readArray(v, where, limits.maxTensors * 16).map((s, i) => readName(s, `${where}[${i}]`, limits));
}

export function parseServerMetadata(value: unknown, partial?: Partial<DecodeLimits>): ServerMetadata {
  const limits = withLimits(partial);
  const obj = readObject(value, 'server metadata');
  return {
    name: readName(obj.name, 'name', limits),
    version: readOptionalString(obj.version, 'version', limits) ?? '',
    extensions: obj.extensions === undefined ? [] : readStringList(obj.extensions, 'extensions', limits),
  };
}

function readTensorMetadata(value: unknown, where: string, limits: DecodeLimits): TensorMetadata[] {
  return readArray(value, where, limits.maxTensors).map((raw, i) => {
    const at = `${where}[${i}]`;
    const obj = readObject(raw, at);
    return {
      name: readName(obj.name, `${at}.name`, limits),
      datatype: parseDatatype(obj.datatype, at),
      shape: readShape(obj.shape, `${at}.shape`, limits, true).shape,
    };
  });
}

export function parseModelMetadata(value: unknown, partial?: Partial<DecodeLimits>): ModelMetadata {
  const limits = withLimits(partial);
  const obj = readObject(value, 'model metadata');
  const meta: ModelMetadata = {
    name: readName(obj.name, 'name', limits),
    platform: readOptionalString(obj.platform, 'platform', limits) ?? '',
    inputs: readTensorMetadata(obj.inputs ?? [], 'inputs', limits),
    outputs: readTensorMetadata(obj.outputs ?? [], 'outputs', limits),
  };
  if (obj.versions !== undefined) meta.versions = readStringList(obj.versions, 'versions', limits);
  return meta;
}

export function parseRepositoryIndex(value: unknown, partial?: Partial<DecodeLimits>): RepositoryIndexEntry[] {
  const limits = withLimits(partial);
  return readArray(value, 'repository index', 100_000).map((raw, i) => {
    const at = `[${i}]`;
    const obj = readObject(raw, at);
    const entry: RepositoryIndexEntry = { name: readName(obj.name, `${at}.name`, limits) };
    const version = readOptionalString(obj.version, `${at}.version`, limits);
    if (version !== undefined) entry.version = version;
    const state = readOptionalString(obj.state, `${at}.state`, limits);
    if (state !== undefined) entry.state = state;
    if (typeof obj.reason === 'string') entry.reason = obj.reason.slice(0, 4096);
    return entry;
  });
}

/** `{ "error": "..." }`, the protocol's error body; Flotilla adds its stable `code`. */
export function encodeErrorBody(message: string, code?: string): string {
  return JSON.stringify(code === undefined ? { error: message } : { error: message, code });
}

/** Reads an error body from a server; undefined when the body is not one. */
export function decodeErrorBody(body: string | Uint8Array): { error: string; code?: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || typeof parsed.error !== 'string') return undefined;
  const out: { error: string; code?: string } = { error: parsed.error.slice(0, 4096) };
  if (typeof parsed.code === 'string') out.code = parsed.code.slice(0, 64);
  return out;
}

/** Parses a JSON text, throwing FLT_KSERVE_MALFORMED when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KServeError('FLT_KSERVE_MALFORMED', 'the body is not valid JSON');
  }
}
