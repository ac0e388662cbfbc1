import { KServeError } from '@flotilla/kserve';
import { FlotillaError, isErrorCode } from '@flotilla/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';

/** The protocol's error body, plus Flotilla's stable code. */
export interface ErrorBody {
  error: string;
  code: string;
}

interface Mapped {
  status: number;
  body: ErrorBody;
}

/**
 * How a KServe v2 HTTP server (the agent's local API, the pool worker) reports failures: which coded
 * errors are its own faults worth logging, and extra headers for some codes.
 */
export interface ErrorReplyOptions {
  /** Names the server in the log line of an internal failure. */
  what: string;
  /** Coded errors logged as internal failures besides FLT_INTERNAL. */
  internalCodes?: readonly string[];
  headersFor?: (code: string) => Record<string, string> | undefined;
}

/** Any thrown value → status and `{ error, code }`. Unknown failures say nothing about internals. */
export function mapError(err: unknown, internalCodes: readonly string[] = []): Mapped & { internal: boolean } {
  if (err instanceof KServeError || err instanceof FlotillaError) {
    return { status: err.statusCode, body: { error: err.message, code: err.code }, internal: err.code === 'FLT_INTERNAL' || internalCodes.includes(err.code) };
  }
  const fe = err as Partial<FastifyError> | undefined;
  if (fe && typeof fe.code === 'string') {
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: 'the body is larger than allowed', code: 'FLT_KSERVE_TOO_LARGE' }, internal: false };
    if (fe.code.startsWith('FST_ERR_CTP_')) return { status: 400, body: { error: fe.message ?? 'bad body', code: 'FLT_KSERVE_MALFORMED' }, internal: false };
    if (isErrorCode(fe.code)) return { status: fe.statusCode ?? 500, body: { error: fe.message ?? '', code: fe.code }, internal: false };
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return { status: fe.statusCode, body: { error: fe.message ?? 'bad request', code: 'FLT_BAD_REQUEST' }, internal: false };
    }
  }
  return { status: 500, body: { error: 'internal error', code: 'FLT_INTERNAL' }, internal: true };
}

export function installErrorHandlers(app: FastifyInstance, opts: ErrorReplyOptions = { what: 'local API' }): void {
  app.setErrorHandler((err, req, reply) => {
    const mapped = mapError(err, opts.internalCodes);
    if (mapped.internal) req.log.error({ err }, `${opts.what} request failed`);
    const headers = opts.headersFor?.(mapped.body.code);
    if (headers) void reply.headers(headers);
    void reply.code(mapped.status).type('application/json').send(JSON.stringify(mapped.body));
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { error: `no route ${req.method} ${req.url.slice(0, 200)}`, code: 'FLT_NOT_FOUND' };
    void reply.code(404).type('application/json').send(JSON.stringify(body));
  });
}
