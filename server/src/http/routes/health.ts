import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';

export function healthRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/healthz', { schema: { tags: ['ops'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['ops'], summary: 'Readiness: database and broker up, not shutting down' } }, async (_req, reply) => {
    let db = false;
    try {
      db = (ctx.db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    } catch {
      db = false;
    }
    const ready = db && ctx.isReady();
    return reply.status(ready ? 200 : 503).send(ready ? { status: 'ready' } : { code: 'FLT_NOT_READY', message: 'not ready', details: { db } });
  });

  app.get('/metrics', { schema: { tags: ['ops'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    const body = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });
}
