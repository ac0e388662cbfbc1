import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** Prometheus scrape endpoint for every metric the agent keeps (MQTT session, outbox, OTA, inference). */
export function metricsRoutes(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
