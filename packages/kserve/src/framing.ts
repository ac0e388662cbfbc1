import { KServeError } from './errors.ts';
import { isObject, type JsonObject } from './fields.ts';
import type { DecodeLimits } from './limits.ts';

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

export type Body = Uint8Array | string;

/** A message body ready to send: JSON alone, or the JSON header followed by the binary section. */
export interface EncodedBody {
  body: Body;
  /** Set when a binary section follows; send it as Inference-Header-Content-Length. */
  headerLength?: number;
  contentType: 'application/json' | 'application/octet-stream';
}

/** Header value → byte count, refusing anything but plain decimal digits. */
export function parseHeaderLength(value: string | number | undefined, bodyBytes: number, limits: DecodeLimits): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  if (!/^\d{1,12}$/.test(text)) throw new KServeError('FLT_KSERVE_MALFORMED', 'Inference-Header-Content-Length is not a byte count');
  const n = Number(text);
  if (n > limits.maxHeaderBytes) throw new KServeError('FLT_KSERVE_TOO_LARGE', `the JSON header is larger than ${limits.maxHeaderBytes} bytes`);
  if (n > bodyBytes) throw new KServeError('FLT_KSERVE_MALFORMED', 'Inference-Header-Content-Length is larger than the body');
  return n;
}

/** Splits a body into its parsed JSON header and the binary section after it. */
export function splitBody(body: Body, headerLengthValue: string | number | undefined, limits: DecodeLimits): { header: JsonObject; binary: Uint8Array } {
  const bytes = typeof body === 'string' ? utf8.encode(body) : body;
  if (bytes.byteLength > limits.maxBodyBytes) {
    throw new KServeError('FLT_KSERVE_TOO_LARGE', `the body is larger than ${limits.maxBodyBytes} bytes`);
  }
  const headerLength = parseHeaderLength(headerLengthValue, bytes.byteLength, limits);
  const jsonBytes = headerLength === undefined ? bytes : bytes.subarray(0, headerLength);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Strict.decode(jsonBytes));
  } catch {
    throw new KServeError('FLT_KSERVE_MALFORMED', 'the body is not valid UTF-8 JSON');
  }
  if (!isObject(parsed)) throw new KServeError('FLT_KSERVE_INVALID', 'the body must be a JSON object');
  const binary = headerLength === undefined ? new Uint8Array(0) : bytes.subarray(headerLength);
  return { header: parsed, binary };
}

/** Joins a JSON header and binary chunks into one body. */
export function joinBody(header: unknown, chunks: readonly Uint8Array[]): EncodedBody {
  const json = JSON.stringify(header);
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  const head = utf8.encode(json);
  let total = head.byteLength;
  for (const c of chunks) total += c.byteLength;
  const out = new Uint8Array(total);
  out.set(head, 0);
  let at = head.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return { body: out, headerLength: head.byteLength, contentType: 'application/octet-stream' };
}
