import { DriftReport, ErrorBody, VersionParams } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../http/context.ts';
import { requireRole } from '../http/auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** `GET /v1/models/:name/versions/:version/drift`: each device's and the fleet's drift scores. */
export function driftRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const drift = ctx.drift;
  if (!drift) return;
  app.get<{ Params: Static<typeof VersionParams> }>(
    '/v1/models/:name/versions/:version/drift',
    {
      preHandler: requireRole(ctx.apiTokens, 'viewer'),
      schema: {
        tags: ['registry'],
        summary: 'Drift of live traffic against the version reference: population stability index per device and fleet-wide',
        security: [{ bearer: [] }],
        params: VersionParams,
        response: { 200: DriftReport, ...errors },
      },
    },
    async (request) => {
      const { name, version } = request.params;
      // 404 with the registry's codes for an unknown model or version.
      ctx.registry.models.getVersion(name, version);
      return drift.report(name, version);
    },
  );
}
