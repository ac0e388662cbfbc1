import { Readable } from 'node:stream';
import { ErrorBody, HardExampleList, HardExampleQuery } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { requireRole } from '../auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody };

/**
 * `GET /v1/hard-examples`: the stored hard examples, oldest first, for retraining. `format=json`
 * (default) pages with `after`/`nextAfter`; `format=jsonl` streams one example per line
 * (application/x-ndjson) up to `limit` (default: all).
 */
export function hardExampleRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const viewer = requireRole(ctx.apiTokens, 'viewer');

  app.get<{ Querystring: Static<typeof HardExampleQuery> }>(
    '/v1/hard-examples',
    {
      preHandler: viewer,
      schema: {
        tags: ['escalation'],
        summary: 'Export hard examples (JSON page, or JSON Lines stream with format=jsonl)',
        security: [{ bearer: [] }],
        querystring: HardExampleQuery,
        response: { 200: HardExampleList, ...errors },
      },
    },
    async (request, reply) => {
      const { model, since, after, limit, format } = request.query;
      const filter = { ...(model !== undefined && { model }), ...(since !== undefined && { since }), ...(after !== undefined && { after }) };
      if (format === 'jsonl') {
        const lines = (function* () {
          for (const ex of ctx.hardExamples.iterate({ ...filter, ...(limit !== undefined && { limit }) })) yield `${JSON.stringify(ex)}\n`;
        })();
        return reply.type('application/x-ndjson').send(Readable.from(lines));
      }
      const pageSize = limit ?? 100;
      const items = ctx.hardExamples.list({ ...filter, limit: pageSize });
      const last = items[items.length - 1];
      return { items, nextAfter: items.length === pageSize && last ? last.seq : null };
    },
  );
}
