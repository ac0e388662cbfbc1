import { DEFAULT_LIMITS, type DecodeLimits } from '@flotilla/kserve';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { AGENT_VERSION } from '../version.ts';
import { installErrorHandlers } from './error-reply.ts';
import type { LocalInference } from './local-inference.ts';
import { healthRoutes } from './routes/health.ts';
import { inferRoutes } from './routes/infer.ts';
import { modelRoutes } from './routes/models.ts';
import { metricsRoutes } from './routes/metrics.ts';
import type { Registry } from 'prom-client';

export interface LocalApiOptions {
  inference: LocalInference;
  /** Largest request body in bytes (default 32 MiB); larger bodies get 413 FLT_KSERVE_TOO_LARGE. */
  bodyLimit?: number;
  /** Codec limits for decoding requests (element counts, tensor counts, header size...). */
  limits?: Partial<DecodeLimits>;
  /** Whether the agent takes inference requests now; `/v2/health/ready` answers from it. */
  isReady?: () => boolean;
  logger?: FastifyBaseLogger;
  /** Served at GET /metrics when given. */
  metrics?: Registry;
  /** Longest a connection may take to send its request (default 30 s). */
  requestTimeoutMs?: number;
}

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

/**
 * The agent's local inference API, speaking KServe v2 so Triton clients work against the device.
 * Builds the app only; `startLocalApi` listens.
 */
export function buildLocalApi(opts: LocalApiOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    // Request logs on every inference call would cost more than the call on a small model.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  // Every body is read as bytes and decoded by @flotilla/kserve, JSON included: one strict path,
  // coded errors, and the binary extension whatever content type a client sends.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  installErrorHandlers(app);
  healthRoutes(app, {
    metadata: { name: 'flotilla-agent', version: AGENT_VERSION, extensions: ['binary_tensor_data'] },
    isReady: opts.isReady ?? (() => true),
  });
  modelRoutes(app, opts.inference);
  inferRoutes(app, opts.inference, { ...DEFAULT_LIMITS, maxBodyBytes: bodyLimit, ...opts.limits });
  if (opts.metrics) metricsRoutes(app, opts.metrics);
  return app;
}
