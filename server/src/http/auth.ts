import { FlotillaError } from '@flotilla/protocol';
import type { FastifyRequest } from 'fastify';
import type { ApiPrincipal, ApiTokens } from '../auth/api-tokens.ts';
import { roleAllows, type Role } from '../auth/roles.ts';
import type { AuditActor } from '../audit/audit-log.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: ApiPrincipal | null;
  }
}

function bearer(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (!h) return null;
  const m = /^Bearer ([A-Za-z0-9_.~+/=-]{1,512})$/.exec(h);
  return m ? m[1]! : null;
}

/** preHandler that admits an API token holding at least `role`: 401 without a valid token, 403 below the role. */
export function requireRole(tokens: ApiTokens, role: Role) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = bearer(request);
    const principal = token ? tokens.authenticate(token) : null;
    if (!principal) throw new FlotillaError('FLT_UNAUTHENTICATED', 'a valid API token is required (Authorization: Bearer <token>)');
    if (!roleAllows(principal.role, role)) {
      throw new FlotillaError('FLT_FORBIDDEN', `this needs the ${role} role; the token has ${principal.role}`);
    }
    request.principal = principal;
  };
}

export function actorOf(request: FastifyRequest): AuditActor {
  const p = request.principal;
  if (!p) throw new FlotillaError('FLT_UNAUTHENTICATED');
  return { name: `${p.name}#${p.tokenId.slice(0, 8)}`, role: p.role };
}
