import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ErrorBody, FlotillaError, HARD_EXAMPLE_DIGEST_HEADER, HardExampleUploadParams, HardExampleUploadResult } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { authenticateDevice } from '../../registry/device-auth.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 413: ErrorBody };

/** Reads a request body of at most `max` bytes, refusing as soon as it grows past that. */
async function readCapped(body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    total += buf.byteLength;
    if (total > max) {
      body.destroy();
      throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE', `the upload is over the maximum of ${max} bytes`, { maxBytes: max });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

/**
 * `PUT /v1/device/hard-examples/:requestId/input`: the input of one hard example too large for an
 * MQTT event, as raw bytes (docs/escalation.md). Device credential only; the example is the
 * caller's own by construction (stored under the authenticated device id). The body is read as a
 * stream, capped at the store's limit, and must match the sha256 in `x-flotilla-sha256`. Stored
 * once: 201 the first time, 200 for the same bytes again, 409 for other bytes. Registered as its own
 * plugin so its raw-stream body parser applies to it alone.
 */
export function hardExampleUploadRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const inputs = ctx.hardExamples.inputs;
  // The body stays a stream: credential, digest header and announced size are checked before a byte is read.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  // A refusal sent while the device is still uploading must not make the server drain the rest.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  app.put<{ Params: Static<typeof HardExampleUploadParams> }>(
    '/v1/device/hard-examples/:requestId/input',
    {
      schema: {
        tags: ['escalation'],
        summary: "Upload a hard example's large input (raw bytes, application/octet-stream, sha256 in x-flotilla-sha256)",
        security: [{ basic: [] }],
        params: HardExampleUploadParams,
        response: { 200: HardExampleUploadResult, 201: HardExampleUploadResult, ...errors },
      },
    },
    async (request, reply) => {
      const deviceId = authenticateDevice(request.headers.authorization, ctx.enrollment);
      const { requestId } = request.params;
      if (!(request.body instanceof Readable)) throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_INVALID', 'send the input as application/octet-stream');
      const digest = request.headers[HARD_EXAMPLE_DIGEST_HEADER];
      if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) {
        throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_INVALID', `${HARD_EXAMPLE_DIGEST_HEADER} must be the body's sha256 in lowercase hex`);
      }
      const announced = request.headers['content-length'];
      if (announced !== undefined && Number(announced) > inputs.maxBytes) {
        throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE', `an upload of ${announced} bytes is over the maximum of ${inputs.maxBytes}`, { maxBytes: inputs.maxBytes });
      }
      const data = await readCapped(request.body, inputs.maxBytes);
      if (data.byteLength === 0) throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_INVALID', 'the upload is empty');
      const measured = createHash('sha256').update(data).digest('hex');
      if (measured !== digest) throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_INVALID', `the body's sha256 is ${measured}, not the announced ${digest}`);
      const result = inputs.put(deviceId, requestId, measured, data, ctx.hardExamples.now());
      if (result.kind === 'conflict') throw new FlotillaError('FLT_HARD_EXAMPLE_UPLOAD_CONFLICT', 'other bytes were already stored for this hard example');
      return reply.status(result.kind === 'stored' ? 201 : 200).send({ requestId, bytes: data.byteLength, sha256: measured, stored: result.kind === 'stored' });
    },
  );
}
