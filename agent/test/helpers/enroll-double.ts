import Fastify, { type FastifyInstance } from 'fastify';
import { onTestFinished } from 'vitest';
import type { EnrollRequest } from '@flotilla/protocol';

export type EnrollReply = { status: number; body: unknown; headers?: Record<string, string> };

/**
 * Test double of the server's POST /v1/enroll route (not the real server): answers with whatever
 * the test scripts, and records every request it got. Listens on a real socket on port 0.
 */
export async function startEnrollDouble(answer: (req: EnrollRequest, n: number) => EnrollReply): Promise<{
  url: string;
  requests: EnrollRequest[];
  app: FastifyInstance;
}> {
  const app = Fastify({ logger: false });
  const requests: EnrollRequest[] = [];
  app.post('/v1/enroll', async (request, reply) => {
    const body = request.body as EnrollRequest;
    requests.push(body);
    const out = answer(body, requests.length);
    if (out.headers) reply.headers(out.headers);
    return reply.code(out.status).send(out.body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}`, requests, app };
}
