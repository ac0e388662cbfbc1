import { AbComparison, AbQuery, ErrorBody, ModelNameParams, RolloutIdParams } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { compareArms } from '../../ab/ab-comparison.ts';
import { readAbReports } from '../../ab/ab-reports.ts';
import type { HttpContext } from '../context.ts';
import { requireRole } from '../auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };
const security = [{ bearer: [] }];

/** A/B comparisons (docs/ota.md, "A/B traffic"): both arms pooled over the fleet, with confidence intervals. */
export function abRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const viewer = requireRole(ctx.apiTokens, 'viewer');

  app.get<{ Params: Static<typeof ModelNameParams>; Querystring: Static<typeof AbQuery> }>(
    '/v1/models/:name/ab',
    {
      preHandler: viewer,
      schema: { tags: ['registry'], summary: 'A/B comparison of a model across the fleet', security, params: ModelNameParams, querystring: AbQuery, response: { 200: AbComparison, ...errors } },
    },
    async (request) => compareArms(request.params.name, readAbReports(ctx.db, request.params.name), request.query.candidate),
  );

  app.get<{ Params: Static<typeof RolloutIdParams> }>(
    '/v1/rollouts/:id/ab',
    {
      preHandler: viewer,
      schema: { tags: ['rollouts'], summary: "A/B comparison of a rollout's new version on its devices", security, params: RolloutIdParams, response: { 200: AbComparison, ...errors } },
    },
    async (request) => {
      const r = ctx.rollouts.get(request.params.id, { funnel: false });
      return compareArms(r.model, readAbReports(ctx.db, r.model, { rolloutId: r.id }), r.version);
    },
  );
}
