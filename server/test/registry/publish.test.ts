import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TrustedKeys, createRotation, exportPublicKey, generateSigningKeyPair, signDetached, verifyRelease, type ReleaseManifest } from '@flotilla/release';
import { signingKeyPath } from '../../src/registry/index.ts';
import { startServer, tokenFor, type TestServer } from '../helpers/server.ts';
import { api, buildTinyModels, draftWithVariants, metadataFrom, rawStatus, type Api } from './fixtures.ts';

describe('versions, publishing and signing', () => {
  let t: TestServer;
  let a: Api;
  let built: Awaited<ReturnType<typeof buildTinyModels>>;
  const now = () => Date.now();

  beforeAll(async () => {
    built = await buildTinyModels();
    t = await startServer();
    a = api(t);
    await draftWithVariants(a, 'tiny', '1.0.0', built);
  });
  afterAll(async () => {
    await t?.close();
    built?.cleanup();
  });

  it('generates the server signing key on first start, owner-readable only, and trusts it', async () => {
    expect(statSync(signingKeyPath(t.dataDir)).mode & 0o777).toBe(0o600);
    const keys = await request(`${t.http}/v1/keys`).then((r) => r.body.json() as Promise<{ keys: Array<{ keyId: string }>; serverKeyId: string }>);
    expect(keys.keys.map((k) => k.keyId)).toEqual([keys.serverKeyId]);
    expect(keys.serverKeyId).toBe(t.server.registry.serverKey.keyId);
  });

  it('publishes with the server key a manifest devices verify, listing every artifact', async () => {
    const res = await a.call('POST', '/v1/models/tiny/versions/1.0.0/publish', { signing: 'server' });
    expect(res.status).toBe(200);
    expect(res.json.state).toBe('published');
    const keys = await a.call('GET', '/v1/keys');
    const verified = verifyRelease(res.json.release, { trustedKeys: TrustedKeys.from(keys.json.keys), now: now(), expect: { model: 'tiny', version: '1.0.0' } });
    expect(verified.digest).toBe(res.json.digest);
    expect(verified.manifest.releaseCounter).toBe(1);
    expect(verified.manifest.variants.map((v) => [v.id, v.file.length])).toEqual([
      ['cpu-int8', built.int8.bytes.length],
      ['onnx-fp32', built.fp32.bytes.length],
    ]);
    const view = await a.call('GET', '/v1/models/tiny/versions/1.0.0');
    expect(view.json).toMatchObject({ state: 'published', manifest: { releaseCounter: 1, digest: res.json.digest, signedBy: [keys.json.serverKeyId] } });
  });

  it('refuses every change to a published version with 409 FLT_REGISTRY_IMMUTABLE', async () => {
    const base = '/v1/models/tiny/versions/1.0.0';
    const attempts = [
      await a.call('PATCH', base, { metadata: metadataFrom(built.int8.card) }),
      await a.call('POST', `${base}/variants`, { id: 'extra', format: 'onnx', precision: 'fp16', constraints: {} }),
      await a.call('DELETE', `${base}/variants/cpu-int8`),
      await a.call('DELETE', base),
      await a.call('POST', `${base}/publish`, {}),
      await a.upload(`${base}/variants/cpu-int8/artifact`, Buffer.from('tampered')),
    ];
    for (const r of attempts) expect([r.status, r.json.code]).toEqual([409, 'FLT_REGISTRY_IMMUTABLE']);
    const sig = signDetached((await a.call('GET', `${base}/unsigned-manifest`)).json.manifest as ReleaseManifest, generateSigningKeyPair().privateKey);
    expect((await a.call('POST', `${base}/signatures`, sig)).json.code).toBe('FLT_REGISTRY_IMMUTABLE');
  });

  it('increments the release counter per model', async () => {
    await draftWithVariants(a, 'tiny', '1.1.0', built);
    await draftWithVariants(a, 'other', '9.0.0', built);
    expect((await a.call('POST', '/v1/models/tiny/versions/1.1.0/publish', {})).json.manifest.releaseCounter).toBe(2);
    expect((await a.call('POST', '/v1/models/other/versions/9.0.0/publish', {})).json.manifest.releaseCounter).toBe(1);
    expect((await a.call('GET', '/v1/models/tiny')).json).toMatchObject({ versions: 2, latestPublished: '1.1.0' });
  });

  it('publishes with an offline signature from a key an admin added, and refuses one from an untrusted key', async () => {
    const offline = generateSigningKeyPair();
    const added = await a.call('POST', '/v1/keys', { publicKey: exportPublicKey(offline.publicKey, 'pem'), label: 'release-engineer' });
    expect(added.status).toBe(201);
    expect(added.json.keys.map((k: { keyId: string }) => k.keyId)).toContain(offline.keyId);
    // The addition is a rotation signed by the server key: a device holding the old set can verify it.
    const rotations = await a.call('GET', '/v1/keys/rotations');
    expect(rotations.json.items).toHaveLength(1);
    expect(rotations.json.items[0].rotation.signatures[0].keyId).toBe(t.server.registry.serverKey.keyId);

    await draftWithVariants(a, 'tiny', '1.2.0', built);
    const base = '/v1/models/tiny/versions/1.2.0';
    const pub = await a.call('POST', `${base}/publish`, { signing: 'offline' });
    expect(pub.json).toMatchObject({ state: 'awaiting-signature', release: null });
    expect(pub.json.manifest.releaseCounter).toBe(3);
    // Waiting for the signature is as immutable as published, and devices cannot have it yet.
    expect((await a.call('DELETE', `${base}/variants/cpu-int8`)).json.code).toBe('FLT_REGISTRY_IMMUTABLE');
    expect((await a.call('GET', `${base}/manifest`)).json.code).toBe('FLT_REGISTRY_NOT_PUBLISHED');

    const fetched = await a.call('GET', `${base}/unsigned-manifest`);
    expect(fetched.json.digest).toBe(pub.json.digest);
    const stranger = signDetached(fetched.json.manifest as ReleaseManifest, generateSigningKeyPair().privateKey);
    const refused = await a.call('POST', `${base}/signatures`, stranger);
    expect([refused.status, refused.json.code]).toEqual([400, 'FLT_RELEASE_UNKNOWN_KEY']);
    const forged = { ...signDetached({ ...fetched.json.manifest, releaseCounter: 99 } as ReleaseManifest, offline.privateKey) };
    expect((await a.call('POST', `${base}/signatures`, forged)).json.code).toBe('FLT_RELEASE_BAD_SIGNATURE');

    const signed = await a.call('POST', `${base}/signatures`, signDetached(fetched.json.manifest as ReleaseManifest, offline.privateKey));
    expect(signed.json.state).toBe('published');
    const keys = await a.call('GET', '/v1/keys');
    const verified = verifyRelease(signed.json.release, { trustedKeys: TrustedKeys.from(keys.json.keys), now: now() });
    expect(verified.keyIds).toEqual([offline.keyId]);
  });

  it('applies a rotation only when a trusted key signed it', async () => {
    const next = generateSigningKeyPair();
    const outsider = generateSigningKeyPair();
    const bogus = createRotation({ issuedAt: now(), add: [{ publicKey: next.publicKey }] }, outsider.privateKey);
    const refused = await a.call('POST', '/v1/keys/rotations', { rotation: bogus });
    expect([refused.status, refused.json.code]).toEqual([400, 'FLT_RELEASE_UNKNOWN_KEY']);
    const operator = await tokenFor(t, 'operator');
    expect((await a.call('POST', '/v1/keys', { publicKey: exportPublicKey(next.publicKey) }, operator)).status).toBe(403);
    expect((await a.call('GET', '/v1/keys')).json.keys.map((k: { keyId: string }) => k.keyId)).not.toContain(next.keyId);
  });

  it('refuses to publish a version with no variants or a variant without its artifact', async () => {
    await a.call('POST', '/v1/models/tiny/versions', { version: '3.0.0', metadata: metadataFrom(built.fp32.card) });
    expect((await a.call('POST', '/v1/models/tiny/versions/3.0.0/publish', {})).json.code).toBe('FLT_REGISTRY_NOT_PUBLISHABLE');
    await a.call('POST', '/v1/models/tiny/versions/3.0.0/variants', { id: 'v', format: 'onnx', precision: 'fp32', constraints: {} });
    const r = await a.call('POST', '/v1/models/tiny/versions/3.0.0/publish', {});
    expect(r.json).toMatchObject({ code: 'FLT_REGISTRY_NOT_PUBLISHABLE', details: { missing: ['v'] } });
  });

  it('audits every registry change', async () => {
    const audit = await a.call('GET', '/v1/audit?target=tiny@1.2.0');
    expect(audit.json.items.map((e: { action: string }) => e.action).sort()).toEqual(['version.create', 'version.publish', 'version.sign']);
    const uploads = await a.call('GET', '/v1/audit?target=tiny@1.2.0/cpu-int8');
    expect(uploads.json.items.map((e: { action: string }) => e.action).sort()).toEqual(['artifact.upload', 'variant.create']);
    const keyAudit = await a.call('GET', '/v1/audit?action=keys.rotate');
    expect(keyAudit.json.items).toHaveLength(1);
  });
});

describe('bad input to the registry', () => {
  let t: TestServer;
  let a: Api;
  let built: Awaited<ReturnType<typeof buildTinyModels>>;

  beforeAll(async () => {
    built = await buildTinyModels();
    t = await startServer();
    a = api(t);
    await a.call('POST', '/v1/models', { name: 'm' });
  });
  afterAll(async () => {
    await t?.close();
    built?.cleanup();
  });

  it('refuses path-like and odd model and version names with 400', async () => {
    for (const name of ['../x', 'a/b', '.hidden', '', 'x'.repeat(129), 'a b', '%2e%2e']) {
      const r = await a.call('POST', '/v1/models', { name });
      expect([name, r.status]).toEqual([name, 400]);
    }
    for (const segment of ['%2e%2e', 'a%2Fb', '..%2Fx', '%2E%2E%2F%2E%2E']) {
      // Sent byte for byte: a WHATWG URL would already have turned %2e%2e into a dot segment.
      expect([segment, await rawStatus(t, `/v1/models/${segment}/versions`)]).toEqual([segment, 400]);
      expect([segment, await rawStatus(t, `/v1/models/m/versions/${segment}`)]).toEqual([segment, 400]);
    }
    const r = await a.call('POST', '/v1/models/m/versions', { version: '../1', metadata: metadataFrom(built.fp32.card) });
    expect(r.status).toBe(400);
  });

  it('refuses malformed metadata with 400: unknown fields, wrong types, oversized lists', async () => {
    const good = metadataFrom(built.fp32.card);
    const bad = [
      { ...good, extra: true },
      { ...good, inputs: [] },
      { ...good, inputs: [{ ...good.inputs[0], dtype: 'complex128' }] },
      { ...good, golden: { ...good.golden, tolerance: -1 } },
      { ...good, metrics: { accuracy: 'high' } },
      { ...good, tags: Array.from({ length: 33 }, (_, i) => `t${i}`) },
      { ...good, labels: { cat: 0 } },
    ];
    for (const metadata of bad) {
      const r = await a.call('POST', '/v1/models/m/versions', { version: '1.0.0', metadata });
      expect([r.status, r.json.code]).toEqual([400, 'FLT_BAD_REQUEST']);
    }
    expect((await a.call('POST', '/v1/models/m/versions', { version: '1.0.0', metadata: good })).status).toBe(201);
  });

  it('refuses variants whose constraints break the release rules', async () => {
    const base = '/v1/models/m/versions/1.0.0/variants';
    const planWithoutGpu = await a.call('POST', base, { id: 'p', format: 'tensorrt-plan', precision: 'fp16', constraints: { tensorrtVersion: '8.6' } });
    expect([planWithoutGpu.status, planWithoutGpu.json.code]).toEqual([400, 'FLT_RELEASE_MANIFEST_INVALID']);
    const unknownField = await a.call('POST', base, { id: 'q', format: 'onnx', precision: 'fp32', constraints: { gpu: 'yes' } });
    expect([unknownField.status, unknownField.json.code]).toEqual([400, 'FLT_BAD_REQUEST']);
    const badFile = await a.call('POST', base, { id: 'r', format: 'onnx', precision: 'fp32', constraints: {}, fileName: '../r.onnx' });
    expect(badFile.status).toBe(400);
    expect((await a.call('POST', base, { id: 'ok', format: 'onnx', precision: 'fp32', constraints: {} })).status).toBe(201);
    expect((await a.call('POST', base, { id: 'ok', format: 'onnx', precision: 'fp32', constraints: {} })).json.code).toBe('FLT_REGISTRY_EXISTS');
  });

  it('answers unknown models, versions and variants with their own 404 codes', async () => {
    expect((await a.call('GET', '/v1/models/nope')).json.code).toBe('FLT_REGISTRY_MODEL_NOT_FOUND');
    expect((await a.call('GET', '/v1/models/m/versions/9.9.9')).json.code).toBe('FLT_REGISTRY_VERSION_NOT_FOUND');
    expect((await a.upload('/v1/models/m/versions/1.0.0/variants/nope/artifact', Buffer.from('x'))).json.code).toBe('FLT_REGISTRY_VARIANT_NOT_FOUND');
  });
});
