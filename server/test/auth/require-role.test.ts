/**
 * The REST authorization gate on its own: which bearer headers reach the token lookup and which
 * role admits which route level. rest-auth.test.ts runs the same gate through every real route.
 */
import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiTokens } from '../../src/auth/api-tokens.ts';
import { ROLES, roleAllows, type Role } from '../../src/auth/roles.ts';
import { openDatabase, type Db } from '../../src/db/open.ts';
import { actorOf, requireRole } from '../../src/http/auth.ts';

const open: Db[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function tokens() {
  const db = openDatabase(':memory:');
  open.push(db);
  const api = new ApiTokens(db, () => 0);
  const issued = Object.fromEntries(ROLES.map((r) => [r, api.create(`${r}-token`, r, 'test').token])) as Record<Role, string>;
  return { api, issued };
}

function request(authorization?: string): FastifyRequest {
  return { headers: authorization === undefined ? {} : { authorization }, principal: null } as unknown as FastifyRequest;
}

async function outcome(gate: (r: FastifyRequest) => Promise<void>, req: FastifyRequest): Promise<string> {
  try {
    await gate(req);
    return 'admitted';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('role ranks', () => {
  it.each([
    ['viewer', 'viewer', true],
    ['viewer', 'operator', false],
    ['viewer', 'admin', false],
    ['operator', 'viewer', true],
    ['operator', 'operator', true],
    ['operator', 'admin', false],
    ['admin', 'viewer', true],
    ['admin', 'operator', true],
    ['admin', 'admin', true],
  ] as const)('a %s token %s the %s level', (held, needed, allowed) => {
    expect(roleAllows(held, needed)).toBe(allowed);
  });
});

describe('requireRole', () => {
  it('admits a token at or above the role and records who it is', async () => {
    const { api, issued } = tokens();
    const req = request(`Bearer ${issued.admin}`);
    expect(await outcome(requireRole(api, 'operator'), req)).toBe('admitted');
    expect(req.principal).toMatchObject({ name: 'admin-token', role: 'admin' });
    expect(actorOf(req)).toEqual({ name: `admin-token#${req.principal!.tokenId.slice(0, 8)}`, role: 'admin' });
  });

  it('tells the caller which role a route needs and which one the token has', async () => {
    const { api, issued } = tokens();
    await expect(requireRole(api, 'admin')(request(`Bearer ${issued.viewer}`))).rejects.toThrow('this needs the admin role; the token has viewer');
    await expect(requireRole(api, 'viewer')(request())).rejects.toThrow('a valid API token is required (Authorization: Bearer <token>)');
  });

  it('refuses a valid token below the role with FLT_FORBIDDEN and does not record it', async () => {
    const { api, issued } = tokens();
    const req = request(`Bearer ${issued.operator}`);
    expect(await outcome(requireRole(api, 'admin'), req)).toBe('FLT_FORBIDDEN');
    expect(req.principal).toBeNull();
    expect(() => actorOf(req)).toThrow(expect.objectContaining({ code: 'FLT_UNAUTHENTICATED' }));
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['the token without the scheme', 'TOKEN'],
    ['a lowercase scheme', 'bearer TOKEN'],
    ['another scheme', 'Basic TOKEN'],
    ['two spaces', 'Bearer  TOKEN'],
    ['a trailing space', 'Bearer TOKEN '],
    ['text before the scheme', 'xBearer TOKEN'],
    ['a second value', 'Bearer TOKEN, Bearer TOKEN'],
    ['a token with a newline after it', 'Bearer TOKEN\n'],
    ['an empty token', 'Bearer '],
  ])('refuses %s with FLT_UNAUTHENTICATED', async (_what, header) => {
    const { api, issued } = tokens();
    const req = request(header?.replace('TOKEN', issued.admin));
    expect(await outcome(requireRole(api, 'viewer'), req)).toBe('FLT_UNAUTHENTICATED');
  });

  it('refuses a revoked or never issued token with FLT_UNAUTHENTICATED', async () => {
    const { api, issued } = tokens();
    api.revoke(api.authenticate(issued.admin)!.tokenId);
    expect(await outcome(requireRole(api, 'viewer'), request(`Bearer ${issued.admin}`))).toBe('FLT_UNAUTHENTICATED');
    expect(await outcome(requireRole(api, 'viewer'), request('Bearer flta_never-issued'))).toBe('FLT_UNAUTHENTICATED');
  });

  it('refuses a header over 512 token characters before looking it up, and admits one of exactly 512', async () => {
    const { api } = tokens();
    const long = `flta_${'a'.repeat(507)}`;
    api.create('long', 'viewer', 'test', long);
    expect(await outcome(requireRole(api, 'viewer'), request(`Bearer ${long}`))).toBe('admitted');
    api.create('longer', 'viewer', 'test', `${long}a`);
    expect(await outcome(requireRole(api, 'viewer'), request(`Bearer ${long}a`))).toBe('FLT_UNAUTHENTICATED');
  });

  it('admits every character a token may hold, and a token of one character', async () => {
    const { api } = tokens();
    for (const token of ['flta_AZaz09-._~+/=', 'x']) {
      api.create('odd', 'viewer', 'test', token);
      expect(await outcome(requireRole(api, 'viewer'), request(`Bearer ${token}`))).toBe('admitted');
    }
  });
});
