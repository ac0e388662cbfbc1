import { parseJson } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { ModelManager } from '../../repository/model-manager.ts';

/** An optional JSON object body (`{}` when empty); only the keys listed are allowed. */
function optionalBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!Buffer.isBuffer(body) || body.byteLength === 0) return {};
  const parsed = parseJson(body.toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FlotillaError('FLT_BAD_REQUEST', 'the body must be a JSON object');
  for (const key of Object.keys(parsed)) {
    if (!allowed.includes(key)) throw new FlotillaError('FLT_BAD_REQUEST', `unknown key ${JSON.stringify(key.slice(0, 64))}`);
  }
  return parsed as Record<string, unknown>;
}

/** The model repository extension: index, load, unload. */
export function repositoryRoutes(app: FastifyInstance, models: ModelManager): void {
  app.post('/v2/repository/index', async (req) => {
    const body = optionalBody(req.body, ['ready']);
    if (body.ready !== undefined && typeof body.ready !== 'boolean') throw new FlotillaError('FLT_BAD_REQUEST', 'ready must be a boolean');
    return models.index(body.ready === true);
  });
  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', async (req, reply) => {
    // Flotilla loads from the repository folder only; config or file overrides in `parameters` are refused.
    const body = optionalBody(req.body, ['parameters']);
    const params = body.parameters;
    if (params !== undefined && (params === null || typeof params !== 'object' || Object.keys(params).length > 0)) {
      throw new FlotillaError('FLT_BAD_REQUEST', 'load takes no config or file overrides: put them in the model repository folder');
    }
    await models.load(req.params.name);
    return reply.code(200).send();
  });
  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', async (req, reply) => {
    optionalBody(req.body, ['parameters']);
    await models.unload(req.params.name);
    return reply.code(200).send();
  });
}
