import { Readable } from 'node:stream';
import { ArtifactParams, ArtifactUploadResponse, ErrorBody, FlotillaError, VariantParams } from '@flotilla/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';
import { authenticateDevice, isBasicAuth } from '../../registry/device-auth.ts';
import { decideRange, etagMatches, ifRangeAllows } from '../../artifacts/byte-range.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody, 416: ErrorBody };

export type Caller = { kind: 'device'; deviceId: string } | { kind: 'admin' };

/**
 * Endpoints that devices and admins share: a device presents its credential as HTTP Basic
 * (the same check the broker makes), an admin a Bearer token with at least the viewer role.
 */
export function deviceOrViewer(ctx: HttpContext) {
  const viewer = requireRole(ctx.apiTokens, 'viewer');
  return async (request: FastifyRequest): Promise<Caller> => {
    const header = request.headers.authorization;
    if (isBasicAuth(header)) return { kind: 'device', deviceId: authenticateDevice(header, ctx.enrollment) };
    await viewer(request);
    return { kind: 'admin' };
  };
}

/**
 * Artifact upload (streamed, hashed on the way to disk, never buffered) and download (HTTP Range,
 * ETag, conditional requests). Registered as its own plugin so the raw-stream body parser applies
 * only here.
 */
export async function artifactRoutes(app: FastifyInstance, ctx: HttpContext): Promise<void> {
  const { registry } = ctx;
  const operator = requireRole(ctx.apiTokens, 'operator');
  const caller = deviceOrViewer(ctx);

  // The body stays a stream: the handler decides (auth, state, size) before a byte is read.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  // A refusal sent while the client is still uploading must not make the server drain the rest.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  app.put<{ Params: Static<typeof VariantParams> }>(
    '/v1/models/:name/versions/:version/variants/:variantId/artifact',
    {
      onRequest: operator,
      schema: {
        tags: ['registry'],
        summary: 'Upload a variant artifact (raw bytes, application/octet-stream); the server measures sha256 and length',
        security: [{ bearer: [] }],
        params: VariantParams,
        response: { 200: ArtifactUploadResponse, ...errors },
      },
    },
    async (request) => {
      const { name, version, variantId } = request.params;
      if (!(request.body instanceof Readable)) throw new FlotillaError('FLT_UNSUPPORTED_MEDIA_TYPE', 'send the artifact as application/octet-stream');
      registry.models.assertUploadable(name, version, variantId);
      const announced = request.headers['content-length'];
      const expectedLength = announced === undefined ? undefined : Number(announced);
      if (expectedLength !== undefined && expectedLength > registry.maxArtifactBytes) {
        throw new FlotillaError('FLT_ARTIFACT_TOO_LARGE', `artifact of ${expectedLength} bytes exceeds the maximum of ${registry.maxArtifactBytes}`, { maxBytes: registry.maxArtifactBytes });
      }
      const stored = await registry.artifacts.put(request.body, { maxBytes: registry.maxArtifactBytes, ...(expectedLength !== undefined ? { expectedLength } : {}) });
      try {
        const variant = registry.models.attachArtifact(actorOf(request), name, version, variantId, stored);
        return { sha256: stored.sha256, length: stored.length, variant };
      } catch (err) {
        // Refused after storing (the version was published meanwhile): leave no orphan behind.
        if (!registry.models.isReferenced(stored.sha256)) await registry.artifacts.delete(stored.sha256);
        throw err;
      }
    },
  );

  app.get<{ Params: Static<typeof ArtifactParams> }>(
    '/v1/artifacts/:sha256',
    {
      schema: {
        tags: ['registry'],
        summary: 'Download an artifact by sha256 (device credential or viewer token); supports Range, If-Range, If-None-Match',
        security: [{ bearer: [] }, { basic: [] }],
        params: ArtifactParams,
        response: { ...errors },
      },
    },
    async (request, reply) => {
      const who = await caller(request);
      const { sha256 } = request.params;
      if (who.kind === 'device') {
        // Unknown and not-entitled look the same to a device, so guessing addresses reveals nothing.
        if (!registry.entitlements.isEntitled(who.deviceId, sha256)) {
          throw new FlotillaError('FLT_ARTIFACT_NOT_ENTITLED', 'this device is not entitled to that artifact');
        }
      } else if (!registry.models.isReferenced(sha256)) {
        throw new FlotillaError('FLT_ARTIFACT_NOT_FOUND', `no artifact ${sha256}`);
      }
      const stat = await registry.artifacts.stat(sha256);
      if (!stat) throw new FlotillaError('FLT_ARTIFACT_NOT_FOUND', `artifact ${sha256} is missing from the store`);
      return sendArtifact(request, reply, ctx, sha256, stat.length);
    },
  );
}

async function sendArtifact(request: FastifyRequest, reply: FastifyReply, ctx: HttpContext, sha256: string, size: number) {
  const etag = `"${sha256}"`;
  // Content-addressed bytes never change; the cache stays private because access is per device.
  reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, max-age=31536000, immutable');
  if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send();
  // Object storage in redirect mode: the entitlement was checked above, so the short-lived URL is
  // the device's permission for this one blob. 307 keeps the method; the device replays Range.
  const direct = await ctx.registry.artifacts.downloadUrl?.(sha256);
  if (direct) return reply.header('cache-control', 'no-store').redirect(direct, 307);
  const rangeHeader = ifRangeAllows(request.headers['if-range'] as string | undefined, etag) ? request.headers.range : undefined;
  const decision = decideRange(rangeHeader, size);
  if (decision.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    throw new FlotillaError('FLT_ARTIFACT_RANGE_NOT_SATISFIABLE', `range ${request.headers.range ?? ''} is outside the ${size} bytes of this artifact`, { size });
  }
  const range = decision.kind === 'partial' ? decision.range : undefined;
  const stream = await ctx.registry.artifacts.open(sha256, range);
  if (!stream) throw new FlotillaError('FLT_ARTIFACT_NOT_FOUND', `artifact ${sha256} is missing from the store`);
  reply.header('content-type', 'application/octet-stream');
  if (range) {
    reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
  } else {
    reply.status(200).header('content-length', size);
  }
  return reply.send(stream);
}
