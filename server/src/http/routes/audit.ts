import { AuditQuery, ErrorBody } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { requireRole } from '../auth.ts';

export function auditRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get<{ Querystring: Static<typeof AuditQuery> }>(
    '/v1/audit',
    {
      preHandler: requireRole(ctx.apiTokens, 'admin'),
      schema: { tags: ['access'], summary: 'Audit log of admin changes, newest first', security: [{ bearer: [] }], querystring: AuditQuery, response: { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody } },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 100;
      const items = ctx.audit.query({
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
        before: q.cursor ? Number(q.cursor) : undefined,
        limit,
      });
      return { items, nextCursor: items.length === limit ? String(items[items.length - 1]!.id) : null };
    },
  );
}
