import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { CliError } from './cli-errors.ts';
import { parseSse, type SseEvent } from './sse-stream.ts';

export interface ApiClientOptions {
  /** Base URL of the control server, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** API token sent as `Authorization: Bearer`; absent for the public endpoints. */
  token?: string | undefined;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

/** Builds a path whose interpolated parts are URL-encoded, so a name can never add a segment. */
export function apiPath(strings: TemplateStringsArray, ...parts: Array<string | number>): string {
  return strings.reduce((acc, s, i) => acc + s + (i < parts.length ? encodeURIComponent(String(parts[i])) : ''), '');
}

function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) params.append(k, item);
    else params.append(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * The CLI's one connection to the control server. It owns an undici Agent (closed by `close()`,
 * safe to call twice) and turns every answer that is not 2xx into a `CliError` carrying the
 * server's FLT_ code and message.
 */
export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #agent: Dispatcher;
  #closing: Promise<void> | undefined;

  constructor(opts: ApiClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new CliError('FLT_CLI_USAGE', `server URL ${JSON.stringify(opts.baseUrl)} is not a URL`, { exitCode: 2 });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError('FLT_CLI_USAGE', `server URL must be http:// or https://, got ${opts.baseUrl}`, { exitCode: 2 });
    }
    this.baseUrl = url.toString().replace(/\/+$/, '');
    this.#token = opts.token;
    this.#agent = new Agent({ connect: { timeout: 10_000 } });
  }

  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.#call<T>('GET', withQuery(path, query));
  }

  send<T>(method: Exclude<Method, 'GET'>, path: string, body?: unknown): Promise<T> {
    return this.#call<T>(method, path, body === undefined ? undefined : { json: body });
  }

  /** Streams `body` as application/octet-stream with a known length; the stream is never buffered. */
  upload<T>(path: string, body: Readable, length: number): Promise<T> {
    return this.#call<T>('PUT', path, { stream: body, length });
  }

  /**
   * Follows a server-sent event stream until the server ends it. A refusal before the stream starts
   * is a `CliError` like any other answer; breaking out of the loop closes the connection.
   */
  async *events(path: string): AsyncGenerator<SseEvent> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.baseUrl}${path}`, { method: 'GET', headers, dispatcher: this.#agent });
    } catch (err) {
      throw unreachable(this.baseUrl, err, false);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw this.#refusal(res.statusCode, await res.body.text());
    try {
      yield* parseSse(res.body);
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  async #call<T>(method: Method, path: string, body?: { json: unknown } | { stream: Readable; length: number }): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let payload: string | Readable | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(body.length);
      payload = body.stream;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.baseUrl}${path}`, { method, headers, body: payload ?? null, dispatcher: this.#agent });
    } catch (err) {
      throw unreachable(this.baseUrl, err, body !== undefined && 'stream' in body);
    }
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new CliError('FLT_CLI_BAD_RESPONSE', `${method} ${path} answered ${res.statusCode} with a body that is not JSON`, { status: res.statusCode });
      }
    }
    throw this.#refusal(res.statusCode, text);
  }

  #refusal(status: number, text: string): CliError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const body = parsed as { code?: unknown; message?: unknown; details?: unknown } | undefined;
    if (!body || typeof body.code !== 'string' || typeof body.message !== 'string') {
      return new CliError('FLT_CLI_BAD_RESPONSE', `the server answered HTTP ${status} without an error code: ${text.slice(0, 200)}`, { status });
    }
    let message = body.message;
    if (status === 401 && this.#token === undefined) message += ' (no API token given: pass --token or set FLOTILLA_TOKEN)';
    return new CliError(body.code, message, { status, details: body.details });
  }

  close(): Promise<void> {
    this.#closing ??= this.#agent.close();
    return this.#closing;
  }
}

function unreachable(baseUrl: string, err: unknown, uploading: boolean): CliError {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const why = e.cause?.code ?? e.code ?? e.message ?? String(err);
  const message = uploading
    ? `the connection to ${baseUrl} broke while the artifact was being sent (${why}); nothing was stored, push again`
    : `cannot reach the server at ${baseUrl}: ${why}`;
  return new CliError('FLT_CLI_SERVER_UNREACHABLE', message, { details: { cause: why } });
}
