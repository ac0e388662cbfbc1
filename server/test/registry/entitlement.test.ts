import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';
import { api, basic, buildTinyModels, draftWithVariants, type Api } from './fixtures.ts';

describe('who may download an artifact or a manifest', () => {
  let t: TestServer;
  let a: Api;
  let built: Awaited<ReturnType<typeof buildTinyModels>>;
  let v1: { fp32: string; int8: string };
  let v2: { fp32: string; int8: string };
  const creds: Record<string, string> = {};

  beforeAll(async () => {
    built = await buildTinyModels();
    t = await startServer();
    a = api(t);
    v1 = await draftWithVariants(a, 'tiny', '1.0.0', built);
    await a.call('POST', '/v1/models/tiny/versions/1.0.0/publish', {});
    // 2.0.0 shares the int8 blob with 1.0.0 but has fp32 bytes of its own.
    v2 = await draftWithVariants(a, 'tiny', '2.0.0', { fp32: { ...built.fp32, bytes: Buffer.concat([built.fp32.bytes, Buffer.from([0])]) }, int8: built.int8 });
    await a.call('POST', '/v1/models/tiny/versions/2.0.0/publish', {});
    for (const id of ['owner', 'other', 'revoked', 'granted']) creds[id] = await enrollAccepted(t, id);
    for (const id of ['owner', 'revoked']) await a.call('PUT', `/v1/devices/${id}/desired`, { models: { tiny: { version: '1.0.0' } } });
    await a.call('POST', '/v1/devices/revoked/revoke');
  });
  afterAll(async () => {
    await t?.close();
    built?.cleanup();
  });

  const fetchAs = async (headers: Record<string, string>, path: string) => {
    const res = await request(`${t.http}${path}`, { headers });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, body, code: res.statusCode >= 400 ? (JSON.parse(body.toString()) as { code: string }).code : null };
  };
  const artifact = (sha: string) => `/v1/artifacts/${sha}`;

  it('lets the device whose desired state names the release download it and its manifest', async () => {
    expect((await fetchAs(basic('owner', creds.owner!), artifact(v1.fp32))).status).toBe(200);
    const m = await fetchAs(basic('owner', creds.owner!), '/v1/models/tiny/versions/1.0.0/manifest');
    expect(m.status).toBe(200);
    const release = JSON.parse(m.body.toString()) as { signed: { version: string; variants: Array<{ file: { sha256: string } }> }; signatures: unknown[] };
    expect(release.signed.version).toBe('1.0.0');
    expect(release.signed.variants.map((x) => x.file.sha256).sort()).toEqual([v1.fp32, v1.int8].sort());
    expect(release.signatures).toHaveLength(1);
  });

  it('refuses another accepted device that is not entitled with 403', async () => {
    const r = await fetchAs(basic('other', creds.other!), artifact(v1.fp32));
    expect(r).toMatchObject({ status: 403, code: 'FLT_ARTIFACT_NOT_ENTITLED' });
    const m = await fetchAs(basic('other', creds.other!), '/v1/models/tiny/versions/1.0.0/manifest');
    expect(m).toMatchObject({ status: 403, code: 'FLT_ARTIFACT_NOT_ENTITLED' });
  });

  it('does not let a device reach a release it is not entitled to through a blob shared with one it is', async () => {
    // v2's fp32 is its own blob: the owner (desired 1.0.0) may not have it.
    expect((await fetchAs(basic('owner', creds.owner!), artifact(v2.fp32))).status).toBe(403);
    expect((await fetchAs(basic('owner', creds.owner!), '/v1/models/tiny/versions/2.0.0/manifest')).status).toBe(403);
  });

  it('answers a guessed sha256 exactly like an existing one the device may not have', async () => {
    const guessed = await fetchAs(basic('other', creds.other!), artifact('ab'.repeat(32)));
    const existing = await fetchAs(basic('other', creds.other!), artifact(v1.fp32));
    expect(guessed.status).toBe(403);
    expect(guessed.body.equals(existing.body)).toBe(true);
    // An admin, by contrast, learns that it does not exist.
    expect((await fetchAs(auth(ADMIN_TOKEN), artifact('ab'.repeat(32)))).code).toBe('FLT_ARTIFACT_NOT_FOUND');
  });

  it('refuses a revoked device, a wrong credential and an unknown device with 401', async () => {
    expect(await fetchAs(basic('revoked', creds.revoked!), artifact(v1.fp32))).toMatchObject({ status: 401, code: 'FLT_UNAUTHENTICATED' });
    expect(await fetchAs(basic('owner', creds.other!), artifact(v1.fp32))).toMatchObject({ status: 401, code: 'FLT_UNAUTHENTICATED' });
    expect(await fetchAs(basic('ghost', creds.owner!), artifact(v1.fp32))).toMatchObject({ status: 401, code: 'FLT_UNAUTHENTICATED' });
    expect((await fetchAs({ authorization: 'Basic !!!' }, artifact(v1.fp32))).status).toBe(401);
    expect((await fetchAs({}, artifact(v1.fp32))).status).toBe(401);
  });

  it('refuses malformed and path-like addresses without touching the disk', async () => {
    expect((await fetchAs(basic('owner', creds.owner!), artifact('../../flotilla.db'))).status).toBe(404);
    expect((await fetchAs(basic('owner', creds.owner!), artifact('AB'.repeat(32)))).status).toBe(400);
    expect((await fetchAs(basic('owner', creds.owner!), artifact('%2e%2e%2fflotilla.db'))).status).toBe(400);
  });

  it('keeps the previously desired release downloadable so a revert can fetch it', async () => {
    await a.call('PUT', '/v1/devices/owner/desired', { models: { tiny: { version: '2.0.0' } } });
    expect((await fetchAs(basic('owner', creds.owner!), artifact(v2.fp32))).status).toBe(200);
    expect((await fetchAs(basic('owner', creds.owner!), artifact(v1.fp32))).status).toBe(200);
    expect((await fetchAs(basic('owner', creds.owner!), '/v1/models/tiny/versions/1.0.0/manifest')).status).toBe(200);
  });

  it('honours an explicit grant and audits it', async () => {
    expect((await fetchAs(basic('granted', creds.granted!), artifact(v2.int8))).status).toBe(403);
    expect((await a.call('POST', '/v1/models/tiny/versions/2.0.0/entitlements', { deviceId: 'granted' })).status).toBe(204);
    expect((await fetchAs(basic('granted', creds.granted!), artifact(v2.int8))).status).toBe(200);
    expect(t.server.registry.entitlements.isEntitled('granted', v2.fp32)).toBe(true);
    const audit = await a.call('GET', '/v1/audit?action=entitlement.grant');
    expect(audit.json.items[0]).toMatchObject({ target: 'granted', details: { model: 'tiny', version: '2.0.0' } });
  });
});
