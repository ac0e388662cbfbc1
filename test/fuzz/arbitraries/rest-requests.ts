import fc from 'fast-check';
import { hostileKey, hostileValue, type Json } from './mutation.ts';

/** One operation of the OpenAPI document: what the fuzzer knows about a route. */
export interface RouteSpec {
  method: string;
  /** OpenAPI path with `{param}` placeholders. */
  path: string;
  pathParams: string[];
  queryParams: string[];
  /** Property names of the JSON body schema, to build bodies that get past the first check. */
  bodyKeys: string[];
  contentTypes: string[];
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> };
}

/** Reads the routes from the server's own OpenAPI document (GET /docs/json). */
export function routesFromOpenApi(doc: { paths: Record<string, Record<string, OpenApiOperation>> }): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params = op.parameters ?? [];
      const content = op.requestBody?.content ?? {};
      out.push({
        method: method.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
        bodyKeys: Object.values(content).flatMap((c) => Object.keys(c.schema?.properties ?? {})),
        contentTypes: Object.keys(content),
      });
    }
  }
  return out.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

/** A request the fuzzer sends, in the shape fastify's inject() takes. */
export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

const strings = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.constantFrom('0', '-1', '1', '1e400', '9007199254740993', 'NaN', 'true', 'null', '', ' ', '..', '../..', '%', '%zz', '%00', '%E0%A4%A', '[]', '{}', '*', 'a'.repeat(300), '__proto__', 'constructor', '$where', "' OR 1=1 --") },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/) },
);

/** A path segment: a real id the server holds (to go past the lookup), or anything. */
function segment(known: readonly string[]): fc.Arbitrary<{ raw: boolean; value: string }> {
  return fc.record({
    raw: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 5, arbitrary: fc.constant(false) }),
    value: known.length > 0 ? fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...known) }, { weight: 3, arbitrary: strings }) : strings,
  });
}

function encodeSegment(s: { raw: boolean; value: string }): string {
  // Raw segments carry characters a client should have escaped; inject still has to route them.
  const text = s.raw ? s.value.replace(/[/?#\s]/g, '_') : encodeURIComponent(s.value);
  return text === '' ? '%20' : text;
}

function queryString(names: readonly string[]): fc.Arbitrary<string> {
  const key = names.length > 0 ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: hostileKey }) : hostileKey;
  const pair = fc.record({ key, value: strings, raw: fc.boolean() }).map(({ key: k, value, raw }) =>
    raw ? `${k.replace(/[&#\s]/g, '')}=${value.replace(/[&#\s]/g, '')}` : `${encodeURIComponent(k)}=${encodeURIComponent(value)}`,
  );
  return fc.array(pair, { maxLength: 5 }).map((pairs) => pairs.join('&'));
}

function jsonBody(keys: readonly string[]): fc.Arbitrary<Json> {
  const key = keys.length > 0 ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: hostileKey }) : hostileKey;
  return fc.oneof(
    { weight: 5, arbitrary: fc.dictionary(key, hostileValue, { maxKeys: 6 }) as fc.Arbitrary<Json> },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json> },
  );
}

const contentTypes = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'garbage', '');

type Body = { kind: 'json'; value: Json } | { kind: 'deep'; depth: number; object: boolean } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'none' } | { kind: 'big'; size: number };

function body(route: RouteSpec): fc.Arbitrary<Body> {
  return fc.oneof(
    { weight: 8, arbitrary: jsonBody(route.bodyKeys).map((value) => ({ kind: 'json' as const, value })) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'text' as const, text })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
    // Nesting as text: deep enough to overflow any recursive walk of the parsed body.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 1, max: 50_000 }), object: fc.boolean() }) },
    { weight: 1, arbitrary: fc.integer({ min: 250_000, max: 300_000 }).map((size) => ({ kind: 'big' as const, size })) },
  );
}

export interface RequestOptions {
  /** Real ids the server holds, per path parameter name (falls back to anything). */
  known: Record<string, readonly string[]>;
  /** Authorization header sent on most requests. */
  authorization: string;
}

/** A fuzzed request for one route: path parameters, query string, body, content type, credentials. */
export function fuzzRequest(route: RouteSpec, opts: RequestOptions): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      segments: fc.tuple(...route.pathParams.map((p) => segment(opts.known[p] ?? []))),
      query: fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 4, arbitrary: queryString(route.queryParams) }),
      body: route.method === 'GET' || route.method === 'DELETE' ? fc.oneof({ weight: 5, arbitrary: fc.constant({ kind: 'none' as const }) }, { weight: 1, arbitrary: body(route) }) : body(route),
      contentType: fc.oneof({ weight: 6, arbitrary: fc.constant(route.contentTypes[0] ?? 'application/json') }, { weight: 2, arbitrary: contentTypes }),
      auth: fc.oneof({ weight: 12, arbitrary: fc.constant(opts.authorization) }, { weight: 1, arbitrary: fc.constantFrom('', 'Bearer ', 'Bearer x', 'Basic Og==', 'Basic ' + 'A'.repeat(400)) }),
    })
    .map(({ segments, query, body: b, contentType, auth }) => {
      let i = 0;
      const path = route.path.replace(/\{[^}]+\}/g, () => encodeSegment(segments[i++]!));
      const headers: Record<string, string> = {};
      if (auth) headers.authorization = auth;
      let payload: string | Buffer | undefined;
      switch (b.kind) {
        case 'json':
          payload = JSON.stringify(b.value);
          break;
        case 'deep':
          payload = b.object ? '{"a":'.repeat(b.depth) + '1' + '}'.repeat(b.depth) : '['.repeat(b.depth) + ']'.repeat(b.depth);
          break;
        case 'text':
          payload = b.text;
          break;
        case 'bytes':
          payload = Buffer.from(b.bytes);
          break;
        case 'big':
          payload = JSON.stringify({ pad: 'x'.repeat(b.size) });
          break;
        case 'none':
          break;
      }
      if (payload !== undefined && contentType) headers['content-type'] = contentType;
      const req: FuzzRequest = { method: route.method, url: query ? `${path}?${query}` : path, headers, ...(payload !== undefined ? { payload } : {}) };
      Object.defineProperty(req, fc.toStringMethod, {
        value: () => `${req.method} ${req.url} ${JSON.stringify(headers)} ${typeof payload === 'string' ? JSON.stringify(payload.slice(0, 400)) : payload ? `<${payload.length} bytes>` : ''}`,
      });
      return req;
    });
}
