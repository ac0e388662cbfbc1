/**
 * TEST DOUBLE: a strict stand-in for S3's request authentication (AWS Signature Version 4), put in
 * front of s3rver because s3rver stores and serves objects faithfully but accepts any SigV4
 * signature. The gate recomputes every signature (Authorization header and presigned query) from
 * the secret, refuses unsigned `x-amz-*` headers, a presigned URL sent with an Authorization header, a signed payload hash that does not match the
 * body, a header-signed request more than 15 minutes off the clock, and an expired presigned URL,
 * then forwards what it accepted to s3rver unchanged. Written for Flotilla's tests from the
 * published SigV4 rules; it is not S3 and is named a double wherever it is used.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Sigv4GateOptions {
  /** Where accepted requests go (s3rver). */
  upstream: { host: string; port: number };
  /** accessKeyId → secretAccessKey. */
  keys: Record<string, string>;
  now?: () => number;
}

export interface Sigv4Gate {
  url: string;
  /** Every refusal, for tests that check why a request failed. */
  refusals: { method: string; path: string; code: string }[];
  close(): Promise<void>;
}

const hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
/** SigV4's URI encoding: RFC 3986 unreserved characters stay, everything else is %XX. */
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function amzTime(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Refusal(403, 'AccessDenied', `bad X-Amz-Date ${s}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function parseQuery(raw: string): [string, string][] {
  if (raw === '') return [];
  return raw.split('&').map((pair) => {
    const i = pair.indexOf('=');
    const k = i < 0 ? pair : pair.slice(0, i);
    const v = i < 0 ? '' : pair.slice(i + 1);
    return [decodeURIComponent(k), decodeURIComponent(v)];
  });
}

function verify(req: IncomingMessage, body: Buffer, opts: Sigv4GateOptions): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = parseQuery(q < 0 ? '' : url.slice(q + 1));
  const get = (name: string) => query.find(([k]) => k === name)?.[1];
  const now = (opts.now ?? Date.now)();

  let credential: string, signedHeaders: string, signature: string, amzDate: string, payloadHash: string;
  const presigned = get('X-Amz-Algorithm') !== undefined;
  if (presigned) {
    if (req.headers.authorization !== undefined) throw new Refusal(400, 'InvalidArgument', 'Only one auth mechanism allowed');
    if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw new Refusal(400, 'AuthorizationQueryParametersError', 'unsupported algorithm');
    const fields = ['X-Amz-Credential', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-Expires'].map(get);
    if (fields.some((f) => f === undefined)) throw new Refusal(400, 'AuthorizationQueryParametersError', 'missing presign parameter');
    [credential, signedHeaders, signature, amzDate] = fields as [string, string, string, string, string];
    const expires = Number(get('X-Amz-Expires'));
    if (!Number.isInteger(expires) || expires < 1 || expires > 604_800) throw new Refusal(400, 'AuthorizationQueryParametersError', 'bad X-Amz-Expires');
    if (now > amzTime(amzDate) + expires * 1000) throw new Refusal(403, 'AccessDenied', 'Request has expired');
    payloadHash = 'UNSIGNED-PAYLOAD';
  } else {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization ?? ''));
    if (!m) throw new Refusal(403, 'AccessDenied', 'no SigV4 authorization');
    [, credential = '', signedHeaders = '', signature = ''] = m;
    amzDate = String(req.headers['x-amz-date'] ?? '');
    if (Math.abs(now - amzTime(amzDate)) > 15 * 60_000) throw new Refusal(403, 'RequestTimeTooSkewed', 'request time too skewed');
    payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    if (payloadHash === '') throw new Refusal(400, 'InvalidRequest', 'missing x-amz-content-sha256');
    if (/^[0-9a-f]{64}$/.test(payloadHash) && hex(body) !== payloadHash) throw new Refusal(400, 'XAmzContentSHA256Mismatch', 'payload hash mismatch');
    if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash)) throw new Refusal(400, 'InvalidRequest', `payload mode ${payloadHash} not supported`);
  }

  const [accessKeyId = '', date = '', region = '', service = '', terminator = ''] = credential.split('/');
  const secret = opts.keys[accessKeyId];
  if (secret === undefined) throw new Refusal(403, 'InvalidAccessKeyId', 'unknown access key');
  if (service !== 's3' || terminator !== 'aws4_request' || !amzDate.startsWith(date)) throw new Refusal(403, 'AccessDenied', 'bad credential scope');
  const signed = signedHeaders.split(';');
  if (!signed.includes('host')) throw new Refusal(403, 'AccessDenied', 'host is not signed');
  // S3 requires every x-amz-* header to be signed, so none can be added on the way.
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith('x-amz-') && !signed.includes(name)) throw new Refusal(403, 'AccessDenied', `unsigned header ${name}`);
  }

  const canonicalQuery = query
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = signed.map((name) => {
    const value = req.headers[name];
    if (value === undefined) throw new Refusal(403, 'AccessDenied', `signed header ${name} is absent`);
    return `${name}:${String(value).trim().replace(/\s+/g, ' ')}\n`;
  });
  const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/${terminator}`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), terminator);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Refusal(403, 'SignatureDoesNotMatch', 'signature does not match');
}

function refuse(res: ServerResponse, err: Refusal): void {
  res.writeHead(err.status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${err.code}</Code><Message>${err.message}</Message></Error>`);
}

export async function startSigv4Gate(opts: Sigv4GateOptions): Promise<Sigv4Gate> {
  const refusals: Sigv4Gate['refusals'] = [];
  const server: Server = createServer((req, res) => {
    // Buffered only so a signed payload hash can be checked before anything reaches the store;
    // test uploads are a few MiB per request.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        verify(req, body, opts);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        refusals.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '', code: err.code });
        refuse(res, err);
        return;
      }
      const up = httpRequest({ ...opts.upstream, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    refusals,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
