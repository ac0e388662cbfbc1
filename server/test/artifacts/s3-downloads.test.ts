import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, interceptors, request } from 'undici';
import { ADMIN_TOKEN, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';
import { api, basic, buildTinyModels, draftWithVariants, metadataFrom, type Api } from '../registry/fixtures.ts';
import { ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, startLocalS3, type LocalS3 } from './local-s3.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Announces `announced` bytes, sends `sent`, then drops the connection mid-upload. */
function truncatedUpload(t: TestServer, path: string, announced: number, sent: Buffer): Promise<void> {
  const url = new URL(t.http);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`PUT ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${announced}\r\n\r\n`);
      socket.write(sent, () => setTimeout(() => socket.destroy(), 50));
    });
    socket.on('close', () => resolve());
    socket.on('error', () => {});
  });
}

// One model build serves both modes.
let built: Awaited<ReturnType<typeof buildTinyModels>>;
beforeAll(async () => {
  built = await buildTinyModels();
});
afterAll(() => built?.cleanup());

for (const downloads of ['proxy', 'redirect'] as const) {
  describe(`device downloads from object storage (${downloads} mode)`, () => {
    let s3: LocalS3;
    let t: TestServer;
    let a: Api;
    let digests: { fp32: string; int8: string };
    let entitled: { id: string; credential: string };
    let stranger: { id: string; credential: string };
    const prefix = `srv-${downloads}/`;

    beforeAll(async () => {
      s3 = await startLocalS3();
      t = await startServer({
        registry: { maxArtifactBytes: 256 * 1024 },
        artifacts: { store: 's3', endpoint: s3.endpoint, bucket: BUCKET, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, forcePathStyle: true, prefix, downloads, presignTtlSec: 60 },
      });
      a = api(t);
      digests = await draftWithVariants(a, 'tiny', '1.0.0', built);
      expect((await a.call('POST', '/v1/models/tiny/versions/1.0.0/publish', {})).status).toBe(200);
      entitled = { id: 'dev-a', credential: await enrollAccepted(t, 'dev-a') };
      stranger = { id: 'dev-b', credential: await enrollAccepted(t, 'dev-b') };
      expect((await a.call('PUT', '/v1/devices/dev-a/desired', { models: { tiny: { version: '1.0.0' } } })).status).toBe(200);
    });
    afterAll(async () => {
      await t?.close();
      await s3?.close();
    });

    const get = (who: { id: string; credential: string }, headers: Record<string, string> = {}) =>
      request(`${t.http}/v1/artifacts/${digests.fp32}`, { headers: { ...basic(who.id, who.credential), ...headers } });

    /** What the device ends up with: the server's answer, or in redirect mode the bucket's answer to the Location. */
    async function fetchAsDevice(headers: Record<string, string>) {
      const res = await get(entitled, headers);
      if (downloads === 'proxy') return res;
      expect(res.statusCode).toBe(307);
      expect(res.headers['cache-control']).toBe('no-store');
      await res.body.dump();
      const location = String(res.headers.location);
      expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('60');
      return request(location, { headers });
    }

    it('stores uploads through the server at their content address in the bucket', async () => {
      expect(digests.fp32).toBe(sha(built.fp32.bytes));
      expect(await s3.keys()).toEqual([`${prefix}sha256/${digests.fp32}`, `${prefix}sha256/${digests.int8}`].sort());
    });

    it('answers an entitled device with the exact bytes, whole and by Range (206)', async () => {
      const whole = await fetchAsDevice({});
      expect(whole.statusCode).toBe(200);
      expect(Buffer.from(await whole.body.arrayBuffer()).equals(built.fp32.bytes)).toBe(true);
      const part = await fetchAsDevice({ range: 'bytes=100-1123' });
      expect(part.statusCode).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes 100-1123/${built.fp32.bytes.length}`);
      expect(Buffer.from(await part.body.arrayBuffer()).equals(built.fp32.bytes.subarray(100, 1124))).toBe(true);
    });

    it('gives a device that is not entitled neither bytes nor a URL', async () => {
      const res = await get(stranger);
      expect(res.statusCode).toBe(403);
      expect(res.headers.location).toBeUndefined();
      expect((await res.body.json()) as { code: string }).toMatchObject({ code: 'FLT_ARTIFACT_NOT_ENTITLED' });
    });

    it('answers a matching If-None-Match with 304 and no URL', async () => {
      const res = await get(entitled, { 'if-none-match': `"${digests.fp32}"` });
      expect(res.statusCode).toBe(304);
      expect(res.headers.location).toBeUndefined();
      await res.body.dump();
    });

    if (downloads === 'redirect') {
      it('is followed by an undici client with the redirect interceptor, Range kept and the device credential dropped', async () => {
        const following = new Agent().compose(interceptors.redirect({ maxRedirections: 1 }));
        try {
          const res = await request(`${t.http}/v1/artifacts/${digests.fp32}`, {
            headers: { ...basic(entitled.id, entitled.credential), range: 'bytes=10-19' },
            dispatcher: following,
          });
          expect(res.statusCode).toBe(206);
          expect(Buffer.from(await res.body.arrayBuffer()).equals(built.fp32.bytes.subarray(10, 20))).toBe(true);
          expect(s3.gate.refusals).toEqual([]);
        } finally {
          await following.close();
        }
      });
    }

    it('keeps nothing in the bucket from an upload cut off mid-way', async () => {
      expect((await a.call('POST', '/v1/models/tiny/versions', { version: '1.1.0', metadata: metadataFrom(built.fp32.card) })).status).toBe(201);
      expect((await a.call('POST', '/v1/models/tiny/versions/1.1.0/variants', { id: 'onnx-fp32', format: 'onnx', precision: 'fp32', constraints: {} })).status).toBe(201);
      const before = await s3.keys();
      await truncatedUpload(t, '/v1/models/tiny/versions/1.1.0/variants/onnx-fp32/artifact', 100_000, Buffer.alloc(40_000, 1));
      const v = await a.call('GET', '/v1/models/tiny/versions/1.1.0');
      expect(v.json.variants[0].sha256 ?? null).toBeNull();
      // The store deletes its temporary key once the failed transfer has settled.
      for (let i = 0; i < 100 && (await s3.keys()).length !== before.length; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await s3.keys()).toEqual(before);
    });
  });
}
