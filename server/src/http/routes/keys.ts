import { AddKeyRequest, ErrorBody, RotationList, RotationListQuery, RotationRequest, TrustedKeysView } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody };
const security = [{ bearer: [] }];

/**
 * Release-signing trust. Reading is public: the set holds only public keys, and devices fetch it
 * to pin at first start. Every change is a rotation statement signed by a key trusted at that
 * moment (see docs/registry.md), appended to a log devices can replay.
 */
export function keyRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { keys } = ctx.registry;
  const admin = requireRole(ctx.apiTokens, 'admin');

  app.get(
    '/v1/keys',
    { schema: { tags: ['keys'], summary: 'The trusted release-signing keys (public)', response: { 200: TrustedKeysView } } },
    async () => keys.view(),
  );

  app.get<{ Querystring: Static<typeof RotationListQuery> }>(
    '/v1/keys/rotations',
    { schema: { tags: ['keys'], summary: 'Applied key rotations in order (public); `after` = last seq already applied', querystring: RotationListQuery, response: { 200: RotationList, ...errors } } },
    async (request) => ({ items: keys.rotations(request.query.after ?? 0) }),
  );

  app.post<{ Body: Static<typeof RotationRequest> }>(
    '/v1/keys/rotations',
    { preHandler: admin, schema: { tags: ['keys'], summary: 'Apply a key rotation signed by currently trusted key(s)', security, body: RotationRequest, response: { 200: TrustedKeysView, ...errors } } },
    async (request) => {
      keys.applyRotation(actorOf(request), request.body.rotation);
      return keys.view();
    },
  );

  app.post<{ Body: Static<typeof AddKeyRequest> }>(
    '/v1/keys',
    { preHandler: admin, schema: { tags: ['keys'], summary: 'Trust an offline public key (the server key signs the rotation that adds it)', security, body: AddKeyRequest, response: { 201: TrustedKeysView, ...errors } } },
    async (request, reply) => {
      keys.addKey(actorOf(request), request.body);
      return reply.status(201).send(keys.view());
    },
  );
}
