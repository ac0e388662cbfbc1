import { ErrorBody, FlotillaError, VersionParams } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { authenticateDevice } from '../../registry/device-auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/**
 * What a device needs to install one release in a single request: the signed manifest (which it
 * verifies itself against its pinned keys) and the version metadata the manifest does not carry:
 * input/output signatures and the golden vectors its self-test runs before the build takes traffic.
 * Device credential only (HTTP Basic), and only for a release the device is entitled to; an unknown
 * release answers like a forbidden one so guessing names reveals nothing.
 */
export function deviceReleaseRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { models, publisher, entitlements } = ctx.registry;

  app.get<{ Params: Static<typeof VersionParams> }>(
    '/v1/device/releases/:name/:version',
    {
      schema: {
        tags: ['registry'],
        summary: 'Signed manifest plus version metadata (golden vectors, tensor signatures) for an entitled device',
        security: [{ basic: [] }],
        params: VersionParams,
        response: { ...errors },
      },
    },
    async (request, reply) => {
      const deviceId = authenticateDevice(request.headers.authorization, ctx.enrollment);
      const { name, version } = request.params;
      if (!entitlements.isEntitledToRelease(deviceId, name, version)) {
        throw new FlotillaError('FLT_ARTIFACT_NOT_ENTITLED', 'this device is not entitled to that release');
      }
      const { release, digest } = publisher.signedRelease(name, version);
      const { metadata } = models.getVersion(name, version);
      return reply.header('etag', `"${digest}"`).send({ model: name, version, digest, release, metadata });
    },
  );
}
