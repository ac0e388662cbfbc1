/**
 * With Mosquitto dynamic security the broker checks device passwords itself, and the server holds
 * only a hash of each credential: the plain credential exists once, in the enrollment answer. This
 * hook hands it to the broker and lets the answer go out only after the broker confirmed, so a
 * device never connects with a credential the broker has not heard of yet. If the broker does not
 * confirm, the device gets FLT_BROKER_PROVISION_FAILED (503) and enrolls again for a fresh credential.
 */
import type { FastifyInstance } from 'fastify';

/** The enrollment route (server/src/http/routes/enroll.ts). */
const ENROLL_ROUTE = '/v1/enroll';

export function provisionOnEnroll(app: FastifyInstance, grant: (deviceId: string, credential: string) => Promise<void>): void {
  app.addHook('preSerialization', async (request, reply, payload) => {
    if (request.method !== 'POST' || request.routeOptions.url !== ENROLL_ROUTE || reply.statusCode !== 200) return payload;
    const answer = payload as { status?: unknown; deviceId?: unknown; credential?: unknown } | null;
    if (answer?.status !== 'accepted' || typeof answer.deviceId !== 'string' || typeof answer.credential !== 'string') return payload;
    await grant(answer.deviceId, answer.credential);
    return payload;
  });
}
