import { EnrollRequest, EnrollResponse, ErrorBody } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';

export function enrollRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.post<{ Body: Static<typeof EnrollRequest> }>(
    '/v1/enroll',
    {
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['devices'],
        summary: 'Device enrollment (fleet token + device enrollment key); repeat until accepted',
        body: EnrollRequest,
        response: { 200: EnrollResponse, 202: EnrollResponse, 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (request, reply) => {
      const res = ctx.enrollment.enroll(request.body);
      return reply.status(res.status === 'pending' ? 202 : 200).send(res);
    },
  );
}
