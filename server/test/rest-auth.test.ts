import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, startServer, tokenFor, type TestServer } from './helpers/server.ts';

type Role = 'viewer' | 'operator' | 'admin';
interface RouteCase {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  role: Role;
  payload?: object;
}

const uuid = '00000000-0000-4000-8000-000000000000';
/** Every admin route and the least role it needs. A new route must be added here. */
const ROUTES: RouteCase[] = [
  { method: 'GET', url: '/v1/devices', role: 'viewer' },
  { method: 'GET', url: '/v1/devices/dev-1', role: 'viewer' },
  { method: 'GET', url: '/v1/devices/dev-1/events', role: 'viewer' },
  { method: 'POST', url: '/v1/devices', role: 'operator', payload: { id: 'dev-new' } },
  { method: 'POST', url: '/v1/devices/dev-1/accept', role: 'operator' },
  { method: 'POST', url: '/v1/devices/dev-1/reject', role: 'operator' },
  { method: 'POST', url: '/v1/devices/dev-1/revoke', role: 'operator' },
  { method: 'PATCH', url: '/v1/devices/dev-1/labels', role: 'operator', payload: { set: { site: 'a' } } },
  { method: 'PUT', url: '/v1/devices/dev-1/desired', role: 'operator', payload: { models: {} } },
  { method: 'DELETE', url: '/v1/devices/dev-1', role: 'admin' },
  { method: 'POST', url: '/v1/tokens', role: 'admin', payload: { name: 'x', role: 'viewer' } },
  { method: 'GET', url: '/v1/tokens', role: 'admin' },
  { method: 'DELETE', url: `/v1/tokens/${uuid}`, role: 'admin' },
  { method: 'POST', url: '/v1/enrollment-tokens', role: 'admin', payload: { name: 'x' } },
  { method: 'GET', url: '/v1/enrollment-tokens', role: 'admin' },
  { method: 'DELETE', url: `/v1/enrollment-tokens/${uuid}`, role: 'admin' },
  { method: 'GET', url: '/v1/audit', role: 'admin' },
];

const below: Record<Role, Role[]> = { viewer: [], operator: ['viewer'], admin: ['viewer', 'operator'] };

describe('admin API authentication and roles', () => {
  let t: TestServer;
  const tokens = {} as Record<Role, string>;
  beforeAll(async () => {
    t = await startServer();
    tokens.admin = ADMIN_TOKEN;
    tokens.operator = await tokenFor(t, 'operator');
    tokens.viewer = await tokenFor(t, 'viewer');
  });
  afterAll(() => t.close());

  it('covers every /v1 admin route the server registers', () => {
    const registered = t.server.http
      .printRoutes({ commonPrefix: false })
      .split('\n')
      .filter((l) => l.includes('/v1/'));
    expect(registered.length).toBeGreaterThan(0);
    const known = new Set(ROUTES.map((r) => `${r.method} ${r.url.replace('dev-1', ':id').replace(uuid, ':id')}`));
    for (const line of registered) {
      const m = /(\/v1\/\S*) \(([A-Z, ]+)\)/.exec(line);
      if (!m || m[1] === '/v1/enroll') continue;
      for (const method of m[2]!.split(', ').filter((x) => x !== 'HEAD')) {
        expect(known.has(`${method} ${m[1]}`), `${method} ${m[1]} has no auth case`).toBe(true);
      }
    }
  });

  for (const r of ROUTES) {
    it(`${r.method} ${r.url} answers 401 FLT_UNAUTHENTICATED without a token or with a wrong one`, async () => {
      for (const headers of [{}, auth('flta_not-a-real-token'), { authorization: 'Basic YWRtaW46YWRtaW4=' }]) {
        const res = await t.server.http.inject({ method: r.method, url: r.url, headers, ...(r.payload ? { payload: r.payload } : {}) });
        expect(res.statusCode).toBe(401);
        expect(res.json()).toMatchObject({ code: 'FLT_UNAUTHENTICATED' });
      }
    });

    if (below[r.role].length > 0) {
      it(`${r.method} ${r.url} answers 403 FLT_FORBIDDEN to ${below[r.role].join(' and ')}`, async () => {
        for (const role of below[r.role]) {
          const res = await t.server.http.inject({ method: r.method, url: r.url, headers: auth(tokens[role]), ...(r.payload ? { payload: r.payload } : {}) });
          expect(res.statusCode).toBe(403);
          expect(res.json()).toMatchObject({ code: 'FLT_FORBIDDEN' });
        }
      });
    }

    it(`${r.method} ${r.url} lets ${r.role} through the role check`, async () => {
      const res = await t.server.http.inject({ method: r.method, url: r.url, headers: auth(tokens[r.role]), ...(r.payload ? { payload: r.payload } : {}) });
      expect([401, 403]).not.toContain(res.statusCode);
    });
  }

  it('stops accepting a revoked API token at once', async () => {
    const created = await t.server.http.inject({ method: 'POST', url: '/v1/tokens', headers: auth(ADMIN_TOKEN), payload: { name: 'temp', role: 'viewer' } });
    const { id, token } = created.json() as { id: string; token: string };
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(token) })).statusCode).toBe(200);
    expect((await t.server.http.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: auth(ADMIN_TOKEN) })).statusCode).toBe(204);
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(token) })).statusCode).toBe(401);
  });
});
