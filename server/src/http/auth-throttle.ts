import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { FailureThrottle } from '../auth/failure-throttle.ts';

const ENROLL_URL = '/v1/enroll';
/** Enough of a token to tell guesses at one token apart from a spray, too little to matter if logged. */
const TOKEN_PREFIX_CHARS = 12;

/**
 * Failed-authentication throttling for the REST API. Every 401 answered to a request that carried
 * a credential (Bearer admin token, Basic device credential, enrollment token in the body) counts
 * as a failure for the source address and the identity it claimed; a throttled address gets 429
 * with Retry-After before any credential is looked up. Requests without a credential are left
 * alone: they are not guesses, and public routes (health, console files) must keep working.
 */
export function installAuthThrottle(app: FastifyInstance, throttle: FailureThrottle, registry: Registry): void {
  const registers = [registry];
  const failures = new Counter({ name: 'flotilla_auth_failures_total', help: 'Failed REST authentications (401) that carried a credential', registers });
  const throttled = new Counter({ name: 'flotilla_auth_throttled_total', help: 'REST requests refused with 429 FLT_AUTH_THROTTLED', registers });

  app.addHook('onRequest', async (request, reply) => {
    if (!carriesCredential(request)) return;
    const verdict = throttle.check(request.ip, identityOf(request));
    if (verdict.allowed) return;
    throttled.inc();
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    reply.header('retry-after', String(seconds));
    throw new FlotillaError('FLT_AUTH_THROTTLED', `too many failed authentications; retry in ${seconds} s`, { retryAfterSec: seconds });
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode !== 401 || !carriesCredential(request)) return;
    failures.inc();
    throttle.failed(request.ip, identityOf(request));
  });
}

function carriesCredential(request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined || (request.method === 'POST' && request.url.split('?')[0] === ENROLL_URL);
}

/** The identity a request claims: a token prefix or a device id. The body is read only once parsed (onResponse). */
function identityOf(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (h?.startsWith('Bearer ')) return `token:${h.slice(7, 7 + TOKEN_PREFIX_CHARS)}`;
  if (h?.startsWith('Basic ')) {
    const decoded = Buffer.from(h.slice(6, 6 + 1024), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon > 0 ? `device:${decoded.slice(0, Math.min(colon, 64))}` : null;
  }
  const body = request.body as { enrollmentToken?: unknown } | undefined;
  if (body && typeof body.enrollmentToken === 'string') return `enroll:${body.enrollmentToken.slice(0, TOKEN_PREFIX_CHARS)}`;
  return null;
}
