import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { ServerMetadata } from '@flotilla/kserve';

export interface HealthRouteOptions {
  metadata: ServerMetadata;
  /** Whether the agent takes inference requests now (false while starting or stopping). */
  isReady: () => boolean;
}

/** `GET /v2`, `/v2/health/live`, `/v2/health/ready`. */
export function healthRoutes(app: FastifyInstance, opts: HealthRouteOptions): void {
  app.get('/v2', async () => opts.metadata);
  app.get('/v2/health/live', async (_req, reply) => reply.code(200).send());
  app.get('/v2/health/ready', async (_req, reply) => {
    if (!opts.isReady()) throw new FlotillaError('FLT_NOT_READY', 'the agent is not taking inference requests');
    return reply.code(200).send();
  });
}
