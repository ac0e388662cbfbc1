import {
  ErrorBody,
  EscalationPolicy,
  EscalationPolicyList,
  EscalationPolicyView,
  PolicyModelParams,
  PoolBody,
  PoolList,
  PoolNameParams,
  PoolView,
} from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };
const security = [{ bearer: [] }];
const tags = ['escalation'];

/**
 * `/v1/pools` (the cloud pool registry) and `/v1/escalation-policies` (per-model policies). Reads
 * need viewer, changes operator; every change is audited and pushes new routing to the devices in
 * their desired state (docs/escalation.md).
 */
export function poolRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const viewer = requireRole(ctx.apiTokens, 'viewer');
  const operator = requireRole(ctx.apiTokens, 'operator');
  const admin = ctx.pools;

  app.get('/v1/pools', { preHandler: viewer, schema: { tags, summary: 'List cloud pools', security, response: { 200: PoolList, ...errors } } }, async () => ({
    items: admin.store.listPools(),
  }));

  app.get<{ Params: Static<typeof PoolNameParams> }>(
    '/v1/pools/:name',
    { preHandler: viewer, schema: { tags, summary: 'One cloud pool', security, params: PoolNameParams, response: { 200: PoolView, ...errors } } },
    async (request) => admin.store.getPool(request.params.name),
  );

  app.put<{ Params: Static<typeof PoolNameParams>; Body: Static<typeof PoolBody> }>(
    '/v1/pools/:name',
    { preHandler: operator, schema: { tags, summary: 'Create or replace a cloud pool', security, params: PoolNameParams, body: PoolBody, response: { 200: PoolView, 201: PoolView, ...errors } } },
    async (request, reply) => {
      const { pool, created } = await admin.putPool(actorOf(request), request.params.name, request.body);
      return reply.status(created ? 201 : 200).send(pool);
    },
  );

  app.delete<{ Params: Static<typeof PoolNameParams> }>(
    '/v1/pools/:name',
    { preHandler: operator, schema: { tags, summary: 'Remove a cloud pool', security, params: PoolNameParams, response: { ...errors } } },
    async (request, reply) => {
      await admin.deletePool(actorOf(request), request.params.name);
      return reply.status(204).send();
    },
  );

  app.get('/v1/escalation-policies', { preHandler: viewer, schema: { tags, summary: 'List escalation policies', security, response: { 200: EscalationPolicyList, ...errors } } }, async () => ({
    items: admin.store.listPolicies(),
  }));

  app.get<{ Params: Static<typeof PolicyModelParams> }>(
    '/v1/escalation-policies/:model',
    { preHandler: viewer, schema: { tags, summary: "One model's escalation policy", security, params: PolicyModelParams, response: { 200: EscalationPolicyView, ...errors } } },
    async (request) => admin.store.getPolicy(request.params.model),
  );

  app.put<{ Params: Static<typeof PolicyModelParams>; Body: Static<typeof EscalationPolicy> }>(
    '/v1/escalation-policies/:model',
    { preHandler: operator, schema: { tags, summary: "Set a model's escalation policy", security, params: PolicyModelParams, body: EscalationPolicy, response: { 200: EscalationPolicyView, ...errors } } },
    async (request) => admin.putPolicy(actorOf(request), request.params.model, request.body),
  );

  app.delete<{ Params: Static<typeof PolicyModelParams> }>(
    '/v1/escalation-policies/:model',
    { preHandler: operator, schema: { tags, summary: "Remove a model's escalation policy", security, params: PolicyModelParams, response: { ...errors } } },
    async (request, reply) => {
      await admin.deletePolicy(actorOf(request), request.params.model);
      return reply.status(204).send();
    },
  );
}
