import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { HttpContext } from './context.ts';
import { installErrorHandling, refuseNonFiniteNumbers } from './errors.ts';
import { installAuthThrottle } from './auth-throttle.ts';
import { healthRoutes } from './routes/health.ts';
import { enrollRoutes } from './routes/enroll.ts';
import { deviceRoutes } from './routes/devices.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { auditRoutes } from './routes/audit.ts';
import { modelRoutes } from './routes/models.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { keyRoutes } from './routes/keys.ts';
import { rolloutRoutes } from './routes/rollouts.ts';
import { deviceReleaseRoutes } from './routes/device-releases.ts';
import { poolRoutes } from './routes/pools.ts';
import { hardExampleRoutes } from './routes/hard-examples.ts';
import { hardExampleUploadRoutes } from './routes/hard-example-uploads.ts';
import { driftRoutes } from '../drift/drift-routes.ts';
import { abRoutes } from './routes/ab.ts';
import { consoleRoutes } from '../console/plugin.ts';

/** Builds the REST API (not listening). Tests drive it with inject() or listen on port 0. */
export async function buildHttpApp(ctx: HttpContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    bodyLimit: ctx.config.http.bodyLimitBytes,
    // Request timing goes to metrics; per-request log lines would drown a fleet's worth of traffic.
    logController: new LogController({ disableRequestLogging: true }),
    // Reject unknown properties instead of silently dropping them (fastify's default strips them).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    forceCloseConnections: true,
    return503OnClosing: true,
    // Router-level refusals (a malformed percent escape, a path parameter past the router's limit)
    // never reach the error handler; they get an FLT_ code here.
    frameworkErrors: (err, _request, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      // The router's reply is typed for a generic route; these answers carry the catalogue's body.
      void (reply as unknown as FastifyReply).status(status).send({ code: 'FLT_BAD_REQUEST', message: err.message });
    },
  });
  app.decorateRequest('principal', null);
  installErrorHandling(app);
  refuseNonFiniteNumbers(app);
  if (ctx.authThrottle) installAuthThrottle(app, ctx.authThrottle, ctx.metrics.registry);

  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.httpRequests.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Flotilla control server', version: '0.1.0', description: 'Fleet, enrollment, registry and rollout API. Errors carry stable FLT_ codes (docs/errors.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, basic: { type: 'http', scheme: 'basic' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  healthRoutes(app, ctx);
  enrollRoutes(app, ctx);
  deviceRoutes(app, ctx);
  tokenRoutes(app, ctx);
  auditRoutes(app, ctx);
  modelRoutes(app, ctx);
  keyRoutes(app, ctx);
  rolloutRoutes(app, ctx);
  deviceReleaseRoutes(app, ctx);
  poolRoutes(app, ctx);
  hardExampleRoutes(app, ctx);
  driftRoutes(app, ctx);
  abRoutes(app, ctx);
  await consoleRoutes(app);
  // Its own plugin: the raw-stream body parser for uploads must not leak to other routes.
  await app.register(async (scope) => artifactRoutes(scope, ctx));
  await app.register(async (scope) => hardExampleUploadRoutes(scope, ctx));
  return app;
}
