import {
  CreateModelRequest,
  CreateVariantRequest,
  CreateVersionRequest,
  EntitlementRequest,
  ErrorBody,
  FlotillaError,
  ModelList,
  ModelNameParams,
  ModelView,
  PublishRequest,
  PublishResponse,
  ResolveQuery,
  ResolveRequest,
  ResolveResponse,
  SignatureRequest,
  UpdateModelRequest,
  UpdateVersionRequest,
  VariantParams,
  VariantView,
  VersionList,
  VersionParams,
  VersionView,
} from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';
import { deviceOrViewer } from './artifacts.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody };
const security = [{ bearer: [] }];
const tags = ['registry'];
/** Version metadata may carry golden vectors; allow more than the default JSON body limit. */
const METADATA_BODY_LIMIT = 4 * 1024 * 1024;

type VP = { Params: Static<typeof VersionParams> };

export function modelRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { models, publisher, entitlements, resolver } = ctx.registry;
  const viewer = requireRole(ctx.apiTokens, 'viewer');
  const operator = requireRole(ctx.apiTokens, 'operator');
  const caller = deviceOrViewer(ctx);

  app.get('/v1/models', { preHandler: viewer, schema: { tags, summary: 'List models', security, response: { 200: ModelList, ...errors } } }, async () => ({
    items: models.listModels(),
  }));

  app.post<{ Body: Static<typeof CreateModelRequest> }>(
    '/v1/models',
    { preHandler: operator, schema: { tags, summary: 'Create a model', security, body: CreateModelRequest, response: { 201: ModelView, ...errors } } },
    async (request, reply) => reply.status(201).send(models.createModel(actorOf(request), request.body)),
  );

  app.get<{ Params: Static<typeof ModelNameParams> }>(
    '/v1/models/:name',
    { preHandler: viewer, schema: { tags, summary: 'One model', security, params: ModelNameParams, response: { 200: ModelView, ...errors } } },
    async (request) => models.getModel(request.params.name),
  );

  app.patch<{ Params: Static<typeof ModelNameParams>; Body: Static<typeof UpdateModelRequest> }>(
    '/v1/models/:name',
    { preHandler: operator, schema: { tags, summary: 'Change a model description or tags', security, params: ModelNameParams, body: UpdateModelRequest, response: { 200: ModelView, ...errors } } },
    async (request) => models.updateModel(actorOf(request), request.params.name, request.body),
  );

  app.get<{ Params: Static<typeof ModelNameParams> }>(
    '/v1/models/:name/versions',
    { preHandler: viewer, schema: { tags, summary: 'Versions of a model', security, params: ModelNameParams, response: { 200: VersionList, ...errors } } },
    async (request) => ({ items: models.listVersions(request.params.name) }),
  );

  app.post<{ Params: Static<typeof ModelNameParams>; Body: Static<typeof CreateVersionRequest> }>(
    '/v1/models/:name/versions',
    {
      preHandler: operator,
      bodyLimit: METADATA_BODY_LIMIT,
      schema: { tags, summary: 'Create a draft version with its metadata', security, params: ModelNameParams, body: CreateVersionRequest, response: { 201: VersionView, ...errors } },
    },
    async (request, reply) => reply.status(201).send(models.createVersion(actorOf(request), request.params.name, request.body.version, request.body.metadata)),
  );

  app.get<VP>(
    '/v1/models/:name/versions/:version',
    { preHandler: viewer, schema: { tags, summary: 'One version: metadata, variants, state, manifest summary', security, params: VersionParams, response: { 200: VersionView, ...errors } } },
    async (request) => models.getVersion(request.params.name, request.params.version),
  );

  app.patch<VP & { Body: Static<typeof UpdateVersionRequest> }>(
    '/v1/models/:name/versions/:version',
    {
      preHandler: operator,
      bodyLimit: METADATA_BODY_LIMIT,
      schema: { tags, summary: 'Replace the metadata of a draft version', security, params: VersionParams, body: UpdateVersionRequest, response: { 200: VersionView, ...errors } },
    },
    async (request) => models.updateVersion(actorOf(request), request.params.name, request.params.version, request.body.metadata),
  );

  app.delete<VP>(
    '/v1/models/:name/versions/:version',
    { preHandler: operator, schema: { tags, summary: 'Delete a draft version', security, params: VersionParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      models.deleteVersion(actorOf(request), request.params.name, request.params.version);
      return reply.status(204).send();
    },
  );

  app.post<VP & { Body: Static<typeof CreateVariantRequest> }>(
    '/v1/models/:name/versions/:version/variants',
    { preHandler: operator, schema: { tags, summary: 'Add a variant (format, precision, hardware constraints) to a draft version', security, params: VersionParams, body: CreateVariantRequest, response: { 201: VariantView, ...errors } } },
    async (request, reply) => reply.status(201).send(models.addVariant(actorOf(request), request.params.name, request.params.version, request.body)),
  );

  app.delete<{ Params: Static<typeof VariantParams> }>(
    '/v1/models/:name/versions/:version/variants/:variantId',
    { preHandler: operator, schema: { tags, summary: 'Remove a variant from a draft version', security, params: VariantParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { name, version, variantId } = request.params;
      models.deleteVariant(actorOf(request), name, version, variantId);
      return reply.status(204).send();
    },
  );

  app.post<VP & { Body: Static<typeof PublishRequest> }>(
    '/v1/models/:name/versions/:version/publish',
    { preHandler: operator, schema: { tags, summary: 'Build the release manifest; sign it with the server key, or wait for an offline signature', security, params: VersionParams, body: Type.Optional(PublishRequest), response: { 200: PublishResponse, ...errors } } },
    async (request) => publisher.publish(actorOf(request), request.params.name, request.params.version, request.body?.signing ?? 'server'),
  );

  app.get<VP>(
    '/v1/models/:name/versions/:version/unsigned-manifest',
    { preHandler: viewer, schema: { tags, summary: 'The manifest built at publish time, for an offline signer', security, params: VersionParams, response: { ...errors } } },
    async (request) => publisher.unsignedManifest(request.params.name, request.params.version),
  );

  app.post<VP & { Body: Static<typeof SignatureRequest> }>(
    '/v1/models/:name/versions/:version/signatures',
    { preHandler: operator, schema: { tags, summary: 'Attach an offline signature (verified against the trusted keys); publishes the version', security, params: VersionParams, body: SignatureRequest, response: { 200: PublishResponse, ...errors } } },
    async (request) => publisher.addSignature(actorOf(request), request.params.name, request.params.version, request.body),
  );

  app.get<VP>(
    '/v1/models/:name/versions/:version/manifest',
    { schema: { tags, summary: 'The signed release manifest (device credential of an entitled device, or viewer token)', security: [{ bearer: [] }, { basic: [] }], params: VersionParams, response: { ...errors } } },
    async (request, reply) => {
      const who = await caller(request);
      const { name, version } = request.params;
      if (who.kind === 'device' && !entitlements.isEntitledToRelease(who.deviceId, name, version)) {
        throw new FlotillaError('FLT_ARTIFACT_NOT_ENTITLED', 'this device is not entitled to that release');
      }
      const { release, digest } = publisher.signedRelease(name, version);
      return reply.header('etag', `"${digest}"`).send(release);
    },
  );

  app.post<VP & { Body: Static<typeof EntitlementRequest> }>(
    '/v1/models/:name/versions/:version/entitlements',
    { preHandler: operator, schema: { tags, summary: 'Let a device download this release (rollouts grant this themselves)', security, params: VersionParams, body: EntitlementRequest, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      entitlements.grant(request.body.deviceId, request.params.name, request.params.version, actorOf(request));
      return reply.status(204).send();
    },
  );

  app.get<VP & { Querystring: Static<typeof ResolveQuery> }>(
    '/v1/models/:name/versions/:version/resolve',
    { preHandler: viewer, schema: { tags, summary: "Which variant this device would get, from its reported inventory, and why", security, params: VersionParams, querystring: ResolveQuery, response: { 200: ResolveResponse, ...errors } } },
    async (request) => resolver.forDevice(request.params.name, request.params.version, request.query.device),
  );

  app.post<VP & { Body: Static<typeof ResolveRequest> }>(
    '/v1/models/:name/versions/:version/resolve',
    { preHandler: viewer, schema: { tags, summary: 'What-if: which variant a given inventory would get, and why', security, params: VersionParams, body: ResolveRequest, response: { 200: ResolveResponse, ...errors } } },
    async (request) => resolver.forInventory(request.params.name, request.params.version, request.body.inventory),
  );
}
