import { ERRORS, FlotillaError, type ErrorCode } from '@flotilla/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';

/** fastify's own error codes, mapped onto the catalogue so every error a client sees has an FLT_ code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'FLT_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'FLT_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'FLT_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'FLT_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'FLT_BAD_REQUEST',
  FST_ERR_VALIDATION: 'FLT_BAD_REQUEST',
};

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | FlotillaError, request, reply) => {
    if (err instanceof FlotillaError) {
      if (err.statusCode >= 500) request.log.error({ err }, err.message);
      return reply.status(err.statusCode).send(err.toJSON());
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const details = fe.validation.map((v) => ({ path: v.instancePath || fe.validationContext, message: v.message }));
      return reply.status(400).send({ code: 'FLT_BAD_REQUEST', message: `invalid ${fe.validationContext ?? 'request'}: ${fe.message}`, details });
    }
    const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (mapped) return reply.status(ERRORS[mapped].status).send({ code: mapped, message: fe.message });
    // JSON syntax errors from the body parser carry a 400 but no code.
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send({ code: 'FLT_BAD_REQUEST', message: fe.message });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ code: 'FLT_INTERNAL', message: ERRORS.FLT_INTERNAL.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ code: 'FLT_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
}

/**
 * Schema coercion turns query strings such as `Infinity` or `1e400` into non-finite numbers that pass
 * minimum/maximum checks; they are refused before any handler sees them.
 */
export function refuseNonFiniteNumbers(app: FastifyInstance): void {
  app.addHook('preHandler', async (request) => {
    for (const [where, values] of [['querystring', request.query], ['params', request.params]] as const) {
      if (!values || typeof values !== 'object') continue;
      for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
        const bad = typeof value === 'number' ? !Number.isFinite(value) : Array.isArray(value) && value.some((v) => typeof v === 'number' && !Number.isFinite(v));
        if (bad) throw new FlotillaError('FLT_BAD_REQUEST', `invalid ${where}: ${key} must be a finite number`, { field: key });
      }
    }
  });
}
