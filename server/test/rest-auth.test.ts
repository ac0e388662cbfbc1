import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registeredRoutes } from './helpers/routes.ts';
import { ADMIN_TOKEN, auth, startServer, tokenFor, type TestServer } from './helpers/server.ts';

type Role = 'viewer' | 'operator' | 'admin';
interface RouteCase {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  role: Role;
  payload?: object;
  /** The registered route pattern, where the url's parameters are not `dev-1` or a uuid. */
  route?: string;
}

const uuid = '00000000-0000-4000-8000-000000000000';
/** Every admin route and the least role it needs. A new route must be added here. */
const ROUTES: RouteCase[] = [
  { method: 'GET', url: '/v1/devices', role: 'viewer' },
  { method: 'GET', url: '/v1/devices/dev-1', role: 'viewer' },
  { method: 'GET', url: '/v1/devices/dev-1/events', role: 'viewer' },
  { method: 'GET', url: '/v1/fleet/summary', role: 'viewer' },
  { method: 'GET', url: '/v1/me', role: 'viewer' },
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
  // Model registry (docs/registry.md). Artifact and manifest downloads also admit a device credential.
  ...registryRoutes(),
  ...rolloutRoutes(),
  // Cloud pools, escalation policies and hard examples (docs/escalation.md).
  { method: 'GET', url: '/v1/pools', role: 'viewer' },
  { method: 'GET', url: '/v1/pools/p1', role: 'viewer', route: '/v1/pools/:name' },
  { method: 'PUT', url: '/v1/pools/p1', role: 'operator', route: '/v1/pools/:name', payload: { region: 'eu', endpoints: ['http://127.0.0.1:9'], models: ['m1'] } },
  { method: 'DELETE', url: '/v1/pools/p1', role: 'operator', route: '/v1/pools/:name' },
  { method: 'GET', url: '/v1/escalation-policies', role: 'viewer' },
  { method: 'GET', url: '/v1/escalation-policies/m1', role: 'viewer', route: '/v1/escalation-policies/:model' },
  { method: 'PUT', url: '/v1/escalation-policies/m1', role: 'operator', route: '/v1/escalation-policies/:model', payload: { maxProbBelow: 0.8 } },
  { method: 'DELETE', url: '/v1/escalation-policies/m1', role: 'operator', route: '/v1/escalation-policies/:model' },
  { method: 'GET', url: '/v1/hard-examples?format=jsonl', role: 'viewer', route: '/v1/hard-examples' },
];

function rolloutRoutes(): RouteCase[] {
  const id = 'ro-missing';
  const spec = { target: { deviceIds: ['dev-1'] }, model: 'm1', version: '1.0.0', stages: [{ percent: 100 }] };
  const cases: Array<[RouteCase['method'], string, Role, object?]> = [
    ['POST', '/v1/rollouts', 'operator', spec],
    ['POST', '/v1/rollouts/dry-run', 'viewer', spec],
    ['GET', '/v1/rollouts', 'viewer'],
    ['GET', '/v1/rollouts/:id', 'viewer'],
    ['GET', '/v1/rollouts/:id/devices', 'viewer'],
    ['GET', '/v1/rollouts/:id/events', 'viewer'],
    ['GET', '/v1/rollouts/:id/stream', 'viewer'],
    ['GET', '/v1/rollouts/:id/ab', 'viewer'],
    ...(['pause', 'resume', 'approve', 'cancel', 'revert'] as const).map((c): [RouteCase['method'], string, Role, object] => ['POST', `/v1/rollouts/:id/${c}`, 'operator', {}]),
  ];
  return cases.map(([method, route, role, payload]) => ({ method, url: route.replace(':id', id), role, route, ...(payload ? { payload } : {}) }));
}

function registryRoutes(): RouteCase[] {
  const v = '/v1/models/:name/versions/:version';
  const at = (pattern: string) => pattern.replace(':name', 'm1').replace(':version', '1.0.0').replace(':variantId', 'v1').replace(':sha256', 'a'.repeat(64));
  const tensor = { name: 'x', dtype: 'float32', shape: [-1, 4] };
  const metadata = { inputs: [tensor], outputs: [tensor] };
  const cases: Array<[RouteCase['method'], string, Role, object?]> = [
    ['GET', '/v1/models', 'viewer'],
    ['POST', '/v1/models', 'operator', { name: 'm-new' }],
    ['GET', '/v1/models/:name', 'viewer'],
    ['PATCH', '/v1/models/:name', 'operator', { description: 'x' }],
    ['GET', '/v1/models/:name/versions', 'viewer'],
    ['POST', '/v1/models/:name/versions', 'operator', { version: '1', metadata }],
    ['GET', v, 'viewer'],
    ['PATCH', v, 'operator', { metadata }],
    ['DELETE', v, 'operator'],
    ['POST', `${v}/variants`, 'operator', { id: 'x', format: 'onnx', precision: 'fp32', constraints: {} }],
    ['DELETE', `${v}/variants/:variantId`, 'operator'],
    ['PUT', `${v}/variants/:variantId/artifact`, 'operator'],
    ['POST', `${v}/publish`, 'operator', {}],
    ['GET', `${v}/unsigned-manifest`, 'viewer'],
    ['POST', `${v}/signatures`, 'operator', { keyId: 'a'.repeat(64), sig: `${'A'.repeat(86)}==` }],
    ['GET', `${v}/manifest`, 'viewer'],
    ['POST', `${v}/entitlements`, 'operator', { deviceId: 'dev-1' }],
    ['GET', `${v}/resolve?device=dev-1`, 'viewer'],
    ['POST', `${v}/resolve`, 'viewer', { inventory: { arch: 'x86_64', gpu: null, executionProviders: ['cpu'] } }],
    ['GET', `${v}/drift`, 'viewer'],
    ['GET', '/v1/models/:name/ab', 'viewer'],
    ['GET', '/v1/artifacts/:sha256', 'viewer'],
    ['POST', '/v1/keys', 'admin', { publicKey: 'x'.repeat(44) }],
    ['POST', '/v1/keys/rotations', 'admin', { rotation: {} }],
  ];
  return cases.map(([method, route, role, payload]) => ({ method, url: at(route), role, route: route.split('?')[0]!, ...(payload ? { payload } : {}) }));
}

/** Public by design: the trusted release keys hold only public keys (docs/registry.md). */
const PUBLIC = new Set(['/v1/enroll', '/v1/keys', '/v1/keys/rotations']);

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
    const registered = registeredRoutes(t.server.http).filter((r) => r.includes(' /v1/'));
    expect(registered.length).toBeGreaterThan(30);
    const known = new Set(ROUTES.map((r) => `${r.method} ${r.route ?? r.url.replace('dev-1', ':id').replace(uuid, ':id')}`));
    const missing = registered.filter((route) => {
      const [method, path] = route.split(' ') as [string, string];
      // Device routes authenticate the device credential, not an API token: their attack tests live with them.
      if (path.startsWith('/v1/device/')) return false;
      if (PUBLIC.has(path) && (method === 'GET' || path === '/v1/enroll')) return false;
      return !known.has(route);
    });
    expect(missing, 'routes without an auth case').toEqual([]);
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
