import { DEFAULT_LIMITS } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { validatePoolConfig } from './config/load.ts';
import type { FrozenPoolConfig } from './config/schema.ts';
import { installErrorHandlers } from './http/error-reply.ts';
import { healthRoutes } from './http/routes/health.ts';
import { inferRoutes, type EncodedAnswer } from './http/routes/infer.ts';
import { modelRoutes } from './http/routes/models.ts';
import { repositoryRoutes } from './http/routes/repository.ts';
import { IdempotencyCache } from './idempotency/idempotency-cache.ts';
import { PoolMetrics } from './metrics/pool-metrics.ts';
import { ModelManager } from './repository/model-manager.ts';
import { ModelRepository } from './repository/model-repository.ts';
import { systemTimers, type PoolTimers } from './runtime/timers.ts';
import { POOL_VERSION } from './version.ts';

export interface PoolWorkerOptions {
  /** Raw or already validated; validated here either way (config/schema.ts holds the defaults). */
  config: unknown;
  logger?: FastifyBaseLogger;
  timers?: PoolTimers;
  /** Where the metrics go (default: a registry of this worker's own). */
  registry?: Registry;
  /** Also export prom-client's process and Node.js metrics (main.ts turns this on). */
  defaultMetrics?: boolean;
}

export interface PoolWorker {
  readonly app: FastifyInstance;
  readonly config: FrozenPoolConfig;
  readonly models: ModelManager;
  readonly registry: Registry;
  /** Loads the startup models; the worker reports ready afterwards. Rejects if one fails to load. */
  start(): Promise<void>;
  /** Listens on the configured host and port (or those given) and returns the base URL. */
  listen(at?: { host?: string; port?: number }): Promise<string>;
  /** Stops listening, waits for open requests, lets queued ones run, stops every worker thread. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The pool worker: a KServe v2 server with dynamic batching over a model repository folder.
 * Builds everything without I/O; `start()` loads models, `listen()` opens the socket.
 */
export function buildPoolWorker(opts: PoolWorkerOptions): PoolWorker {
  const config = validatePoolConfig(opts.config);
  const timers = opts.timers ?? systemTimers;
  const registry = opts.registry ?? new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  // The depth reader runs at scrape time only, after `models` exists.
  const metrics = new PoolMetrics(registry, () => models.queueDepths());
  const models = new ModelManager({
    repository: new ModelRepository(config.modelRepository),
    config,
    timers,
    events: (model, version) => ({
      onBatch(rows) {
        metrics.batchSize.observe({ model }, rows);
        metrics.sessionRuns.inc({ model, version });
      },
      onDequeue(waitedMs) {
        metrics.queueWait.observe({ model }, waitedMs / 1000);
      },
    }),
    log: (msg, fields) => opts.logger?.info(fields ?? {}, msg),
  });
  const cache = new IdempotencyCache<EncodedAnswer>({ ttlMs: config.idempotency.ttlMs, maxEntries: config.idempotency.maxEntries, timers });

  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: config.bodyLimitBytes,
    // Request logs on every inference call would cost more than the call itself.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  // Every body is read as bytes and decoded by @flotilla/kserve, JSON included: one strict path,
  // coded errors, and the binary extension whatever content type a client sends.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => done(null, body));
  installErrorHandlers(app);

  let started = false;
  let closing: Promise<void> | undefined;
  healthRoutes(app, { name: 'flotilla-pool', version: POOL_VERSION, extensions: ['binary_tensor_data', 'model_repository'] }, () => started && !closing);
  modelRoutes(app, models);
  inferRoutes(app, {
    models,
    metrics,
    cache,
    useRequestId: config.idempotency.useRequestId,
    requestTimeoutMs: config.requestTimeoutMs,
    limits: { ...DEFAULT_LIMITS, maxBodyBytes: config.bodyLimitBytes },
    timers,
  });
  repositoryRoutes(app, models);
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Reverse order of start: stop taking requests (open ones finish), then drain and stop workers.
      await Promise.allSettled([app.close()]);
      await Promise.allSettled([models.close()]);
      cache.clear();
    })();
    return closing;
  };

  return {
    app,
    config,
    models,
    registry,
    async start() {
      if (closing) throw new FlotillaError('FLT_NOT_READY', 'the pool worker is closed');
      const names = config.startupModels === '*' ? await models.index().then((e) => [...new Set(e.map((m) => m.name))]) : [...config.startupModels];
      const results = await Promise.allSettled(names.map((n) => models.load(n)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      started = true;
    },
    async listen(at = {}) {
      await app.listen({ host: at.host ?? config.host, port: at.port ?? config.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const host = at.host ?? config.host;
      return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Build, start and listen in one go; closes what it made when a step fails. */
export async function startPoolWorker(opts: PoolWorkerOptions & { host?: string; port?: number }): Promise<{ worker: PoolWorker; url: string }> {
  const worker = buildPoolWorker(opts);
  try {
    await worker.start();
    const at: { host?: string; port?: number } = {};
    if (opts.host !== undefined) at.host = opts.host;
    if (opts.port !== undefined) at.port = opts.port;
    const url = await worker.listen(at);
    return { worker, url };
  } catch (err) {
    await worker.close();
    throw err;
  }
}
