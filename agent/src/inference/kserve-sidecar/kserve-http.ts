import { FlotillaError } from '@flotilla/protocol';
import { decodeErrorBody } from '@flotilla/kserve';
import { Agent, request, type Dispatcher } from 'undici';

export interface KServeHttpOptions {
  baseUrl: string;
  /** Keep-alive connections to the server (default 8). */
  connections?: number;
  dispatcher?: Dispatcher;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Network failures that mean nobody is answering at that address. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED']);
const TIMED_OUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

/**
 * HTTP to the local KServe v2 server over keep-alive connections, with every failure turned into
 * a coded error: unreachable → FLT_KSERVE_UNAVAILABLE, too slow → FLT_KSERVE_TIMEOUT.
 */
export class KServeHttp {
  readonly baseUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly owned: boolean;
  private closing: Promise<void> | undefined;

  constructor(opts: KServeHttpOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.owned = !opts.dispatcher;
    this.dispatcher = opts.dispatcher ?? new Agent({ connections: opts.connections ?? 8, keepAliveTimeout: 30_000 });
  }

  async call(
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: string | Uint8Array; headers?: Record<string, string>; timeoutMs: number; signal?: AbortSignal },
  ): Promise<HttpAnswer> {
    if (this.closing) throw new FlotillaError('FLT_KSERVE_UNAVAILABLE', 'the KServe client is closed');
    try {
      const res = await request(`${this.baseUrl}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: opts.headers,
        body: opts.body,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: opts.signal,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const code = errorCode(err);
      if (code && TIMED_OUT.has(code)) {
        throw new FlotillaError('FLT_KSERVE_TIMEOUT', `${method} ${path}: no answer within ${opts.timeoutMs} ms`, { path, timeoutMs: opts.timeoutMs });
      }
      if (code && UNREACHABLE.has(code)) {
        throw new FlotillaError('FLT_KSERVE_UNAVAILABLE', `${method} ${path}: ${this.baseUrl} is not answering (${code})`, { path, cause: code });
      }
      throw new FlotillaError('FLT_KSERVE_UNAVAILABLE', `${method} ${path}: ${(err as Error).message}`, { path });
    }
  }

  /** An upstream error answer as a coded error carrying the server's own message. */
  static upstreamError(code: 'FLT_KSERVE_UPSTREAM_ERROR' | 'FLT_KSERVE_LOAD_FAILED', what: string, answer: HttpAnswer): FlotillaError {
    const message = decodeErrorBody(answer.body)?.error ?? `HTTP ${answer.status}`;
    return new FlotillaError(code, `${what}: ${message}`, { status: answer.status, error: message });
  }

  close(): Promise<void> {
    this.closing ??= this.owned ? this.dispatcher.close() : Promise.resolve();
    return this.closing;
  }
}
