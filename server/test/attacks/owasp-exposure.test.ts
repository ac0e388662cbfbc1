/**
 * OWASP API Security Top 10 2023, the parts the other attack files do not cover, from the side of
 * someone holding a valid (even admin) token or none:
 *
 * - API3 (excessive data exposure): no answer of any documented GET route carries a secret the
 *   server holds — a device credential or its hash, an enrollment-key hash, an API or enrollment
 *   token or its hash, the bootstrap tokens, the release signing key. The secrets are read from
 *   the server's own SQLite file and key file, so a route that starts returning a raw row fails.
 * - API8 (security misconfiguration): no cross-origin grant to a foreign origin, no framework
 *   banner, and refusals that name an FLT_ code without echoing internals.
 * - API9 (inventory): every route the server registers is in its OpenAPI document, so nothing is
 *   served that the document (and rest-auth.test.ts' role table) does not know about.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signingKeyPath } from '../../src/registry/index.ts';
import { registeredRoutes } from '../helpers/routes.ts';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, enrollAccepted, startServer, tokenFor, type TestServer } from '../helpers/server.ts';
import { api, buildTinyModels, draftWithVariants } from '../registry/fixtures.ts';

let t: TestServer;
let cleanupModels: () => void;
const secrets = new Map<string, string>();
let rolloutId = '';
let sha256 = '';

/** Every value of a column whose name says it holds a secret, across all tables. */
function storedSecrets(dbFile: string): Array<[string, string]> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const out: Array<[string, string]> = [];
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    for (const { name } of tables) {
      const cols = db.prepare(`PRAGMA table_info("${name}")`).all() as Array<{ name: string }>;
      for (const col of cols.filter((c) => /hash|secret|password|private/i.test(c.name))) {
        for (const row of db.prepare(`SELECT "${col.name}" AS v FROM "${name}" WHERE "${col.name}" IS NOT NULL`).all() as Array<{ v: unknown }>) {
          if (typeof row.v === 'string' && row.v.length >= 16) out.push([`${name}.${col.name}`, row.v]);
        }
      }
    }
    return out;
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  t = await startServer();
  const a = api(t);
  const models = await buildTinyModels();
  cleanupModels = models.cleanup;
  const shas = await draftWithVariants(a, 'm1', '1.0.0', models);
  sha256 = shas.fp32;
  const pub = await a.call('POST', '/v1/models/m1/versions/1.0.0/publish', { signing: 'server' });
  expect(pub.status).toBe(200);
  const credential = await enrollAccepted(t, 'dev-1');
  secrets.set('device credential', credential);
  expect((await a.call('POST', '/v1/models/m1/versions/1.0.0/entitlements', { deviceId: 'dev-1' })).status).toBeLessThan(300);
  secrets.set('viewer token', await tokenFor(t, 'viewer'));
  secrets.set('operator token', await tokenFor(t, 'operator'));
  const enrollToken = await a.call('POST', '/v1/enrollment-tokens', { name: 'line-2' });
  expect(enrollToken.status).toBe(201);
  secrets.set('enrollment token', enrollToken.json.token as string);
  secrets.set('bootstrap admin token', ADMIN_TOKEN);
  secrets.set('bootstrap enrollment token', ENROLL_TOKEN);
  const ro = await a.call('POST', '/v1/rollouts', { name: 'exposure', target: { deviceIds: ['dev-1'] }, model: 'm1', version: '1.0.0', stages: [{ percent: 100 }] });
  expect(ro.status).toBe(201);
  rolloutId = ro.json.id as string;
  await a.call('PUT', '/v1/pools/p1', { region: 'eu', endpoints: ['http://127.0.0.1:9'], models: ['m1'] });
  // The signing key as PEM body, as raw private scalar (JWK d), both of which a leak could show.
  const pem = readFileSync(signingKeyPath(t.dataDir), 'utf8');
  secrets.set('signing key (PEM body)', pem.split('\n').filter((l) => l && !l.startsWith('-----')).join(''));
  secrets.set('signing key (d)', createPrivateKey(pem).export({ format: 'jwk' }).d!);
  for (const [where, value] of storedSecrets(join(t.dataDir, 'flotilla.db'))) secrets.set(where, value);
}, 60_000);

afterAll(async () => {
  await t?.close();
  cleanupModels?.();
});

describe('API3: no GET answer carries a secret', () => {
  it('finds the secrets it looks for (device credential hash, token hashes, enrollment key hash, signing key)', () => {
    const names = [...secrets.keys()];
    expect(names).toEqual(expect.arrayContaining(['devices.credential_hash', 'devices.enrollment_key_hash', 'api_tokens.token_hash', 'enrollment_tokens.token_hash', 'signing key (d)']));
  });

  it('every documented GET route, as admin, with real ids', async () => {
    const doc = (await t.server.http.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const fill = (path: string): string =>
      path.replace(/\{(\w+)\}/g, (_, p: string) => {
        if (p === 'id') return path.startsWith('/v1/rollouts') ? rolloutId : path.startsWith('/v1/devices') ? 'dev-1' : 'x';
        return { name: 'm1', model: 'm1', version: '1.0.0', variantId: 'onnx-fp32', sha256, deviceId: 'dev-1', requestId: 'r1' }[p] ?? p;
      });
    const gets = Object.entries(doc.paths)
      .filter(([path, ops]) => 'get' in ops && !path.endsWith('/stream'))
      .map(([path]) => fill(path));
    expect(gets.length).toBeGreaterThan(30);
    let answered = 0;
    for (const url of gets) {
      for (const headers of [auth(ADMIN_TOKEN), {}]) {
        const res = await t.server.http.inject({ method: 'GET', url: url.includes('hard-examples') && !url.includes('?') ? `${url}?format=jsonl` : url, headers });
        if (res.statusCode === 200) answered++;
        expect(res.statusCode, `GET ${url}`).toBeLessThan(500);
        // Artifact bytes are the artifact; everything else is text and must not hold a secret.
        if (String(res.headers['content-type'] ?? '').startsWith('application/octet-stream')) continue;
        for (const [what, value] of secrets) {
          expect(res.body.includes(value), `GET ${url} answers with the ${what}`).toBe(false);
        }
      }
    }
    // The check is only worth something if the routes really answered with their data.
    expect(answered).toBeGreaterThan(20);
  });

  it('the device list and the token lists answer with data, none of it secret', async () => {
    for (const url of ['/v1/devices', '/v1/devices/dev-1', '/v1/tokens', '/v1/enrollment-tokens', '/v1/audit', '/v1/me']) {
      const res = await t.server.http.inject({ method: 'GET', url, headers: auth(ADMIN_TOKEN) });
      expect(res.statusCode, url).toBe(200);
      expect(res.body.length, url).toBeGreaterThan(20);
      expect(res.body).not.toMatch(/"(credential|credentialHash|credential_hash|tokenHash|token_hash|enrollmentKeyHash|enrollment_key_hash|privateKey)"/);
    }
  });
});

describe('API8: configuration', () => {
  it('grants no cross-origin access to a foreign origin, preflight or not', async () => {
    const pre = await t.server.http.inject({
      method: 'OPTIONS',
      url: '/v1/devices',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    expect(pre.headers['access-control-allow-credentials']).toBeUndefined();
    const get = await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: { ...auth(ADMIN_TOKEN), origin: 'https://evil.example' } });
    expect(get.statusCode).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('sends no framework banner', async () => {
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(ADMIN_TOKEN) });
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(String(res.headers.server ?? '')).not.toMatch(/fastify|node/i);
  });

  it('refuses with an FLT_ code and no internals (no stack, no SQL, no file paths)', async () => {
    const cases = [
      { method: 'GET' as const, url: '/v1/nowhere', headers: auth(ADMIN_TOKEN) },
      { method: 'GET' as const, url: '/v1/devices/dev-1', headers: { authorization: 'Bearer flta_wrong-token-0123456789abcdef' } },
      { method: 'POST' as const, url: '/v1/models', headers: { ...auth(ADMIN_TOKEN), 'content-type': 'application/json' }, payload: '{"name": ' },
      { method: 'GET' as const, url: "/v1/devices/dev-1'%20OR%201=1--", headers: auth(ADMIN_TOKEN) },
      { method: 'GET' as const, url: '/v1/models/m1/versions/..%2f..%2fetc%2fpasswd', headers: auth(ADMIN_TOKEN) },
    ];
    for (const c of cases) {
      const res = await t.server.http.inject(c);
      expect(res.statusCode, c.url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, c.url).toBeLessThan(500);
      expect(res.json().code, c.url).toMatch(/^FLT_/);
      expect(res.body, c.url).not.toMatch(/\bat \S+ \(|node_modules|\/src\/|SqliteError|SELECT |sqlite/i);
      expect(res.body, c.url).not.toContain(t.dataDir);
    }
  });
});

describe('API9: inventory', () => {
  it('every /v1 route the server serves is in its OpenAPI document', async () => {
    const doc = (await t.server.http.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)));
    const served = registeredRoutes(t.server.http).filter((r) => r.includes(' /v1/'));
    expect(served.length).toBeGreaterThan(30);
    expect(served.filter((r) => !documented.has(r))).toEqual([]);
  });
});
