import type { ServerMetadata } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';

/** `GET /v2`, `/v2/health/live`, `/v2/health/ready`. */
export function healthRoutes(app: FastifyInstance, metadata: ServerMetadata, isReady: () => boolean): void {
  app.get('/v2', async () => metadata);
  app.get('/v2/health/live', async (_req, reply) => reply.code(200).send());
  app.get('/v2/health/ready', async (_req, reply) => {
    if (!isReady()) throw new FlotillaError('FLT_NOT_READY', 'the pool worker is starting or stopping');
    return reply.code(200).send();
  });
}
