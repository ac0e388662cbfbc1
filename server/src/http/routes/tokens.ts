import { CreateApiToken, CreateEnrollmentToken, ErrorBody, FlotillaError, Principal } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const security = [{ bearer: [] }];

export function tokenRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const admin = requireRole(ctx.apiTokens, 'admin');

  app.get(
    '/v1/me',
    { preHandler: requireRole(ctx.apiTokens, 'viewer'), schema: { tags: ['access'], summary: 'The principal behind the bearer token: name and role', security, response: { 200: Principal, ...errors } } },
    async (request): Promise<Static<typeof Principal>> => {
      const p = request.principal;
      if (!p) throw new FlotillaError('FLT_UNAUTHENTICATED');
      return { tokenId: p.tokenId, name: p.name, role: p.role };
    },
  );

  app.post<{ Body: Static<typeof CreateApiToken> }>(
    '/v1/tokens',
    { preHandler: admin, schema: { tags: ['access'], summary: 'Create an API token (shown once)', security, body: CreateApiToken, response: { ...errors } } },
    async (request, reply) => {
      const actor = actorOf(request);
      const created = ctx.db.transaction(() => {
        const t = ctx.apiTokens.create(request.body.name, request.body.role, actor.name);
        ctx.audit.record(actor, 'token.create', t.id, { name: request.body.name, role: request.body.role });
        return t;
      })();
      return reply.status(201).send({ id: created.id, name: request.body.name, role: request.body.role, token: created.token });
    },
  );

  app.get('/v1/tokens', { preHandler: admin, schema: { tags: ['access'], summary: 'List API tokens (never their secrets)', security, response: { ...errors } } }, async () => ({
    items: ctx.apiTokens.list(),
  }));

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/tokens/:id',
    { preHandler: admin, schema: { tags: ['access'], summary: 'Revoke an API token', security, params: IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const actor = actorOf(request);
      ctx.db.transaction(() => {
        if (request.principal?.tokenId === request.params.id && ctx.apiTokens.countActiveAdmins() <= 1) {
          throw new FlotillaError('FLT_CONFLICT', 'refusing to revoke the last admin token');
        }
        if (!ctx.apiTokens.revoke(request.params.id)) throw new FlotillaError('FLT_TOKEN_NOT_FOUND');
        ctx.audit.record(actor, 'token.revoke', request.params.id);
      })();
      return reply.status(204).send();
    },
  );

  app.post<{ Body: Static<typeof CreateEnrollmentToken> }>(
    '/v1/enrollment-tokens',
    { preHandler: admin, schema: { tags: ['access'], summary: 'Create a fleet enrollment token (shown once)', security, body: CreateEnrollmentToken, response: { ...errors } } },
    async (request, reply) => {
      const actor = actorOf(request);
      const expiresAt = request.body.ttlSec ? Date.now() + request.body.ttlSec * 1000 : null;
      const created = ctx.db.transaction(() => {
        const t = ctx.enrollmentTokens.create(request.body.name, { expiresAt });
        ctx.audit.record(actor, 'enrollment-token.create', t.id, { name: request.body.name, expiresAt });
        return t;
      })();
      return reply.status(201).send({ id: created.id, name: request.body.name, expiresAt, token: created.token });
    },
  );

  app.get('/v1/enrollment-tokens', { preHandler: admin, schema: { tags: ['access'], summary: 'List enrollment tokens (never their secrets)', security, response: { ...errors } } }, async () => ({
    items: ctx.enrollmentTokens.list(),
  }));

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/enrollment-tokens/:id',
    { preHandler: admin, schema: { tags: ['access'], summary: 'Revoke an enrollment token', security, params: IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const actor = actorOf(request);
      ctx.db.transaction(() => {
        if (!ctx.enrollmentTokens.revoke(request.params.id)) throw new FlotillaError('FLT_TOKEN_NOT_FOUND');
        ctx.audit.record(actor, 'enrollment-token.revoke', request.params.id);
      })();
      return reply.status(204).send();
    },
  );
}
