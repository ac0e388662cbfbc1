import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ADMIN_TOKEN, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';
import { api, basic, buildTinyModels, draftWithVariants, eventually, storedFiles, type Api } from './fixtures.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends headers announcing `announced` bytes, writes only `sent`, then drops the connection. */
function truncatedUpload(t: TestServer, path: string, announced: number, sent: Buffer): Promise<void> {
  const url = new URL(t.http);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(
        `PUT ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${announced}\r\n\r\n`,
      );
      socket.write(sent, () => setTimeout(() => socket.destroy(), 50));
    });
    socket.on('close', () => resolve());
    socket.on('error', () => {});
  });
}

describe('artifact upload and device download', () => {
  let t: TestServer;
  let a: Api;
  let built: Awaited<ReturnType<typeof buildTinyModels>>;
  let digests: { fp32: string; int8: string };
  let device: { id: string; credential: string };

  beforeAll(async () => {
    built = await buildTinyModels();
    t = await startServer({ registry: { maxArtifactBytes: 64 * 1024 } });
    a = api(t);
    digests = await draftWithVariants(a, 'tiny', '1.0.0', built);
    expect((await a.call('POST', '/v1/models/tiny/versions/1.0.0/publish', {})).status).toBe(200);
    device = { id: 'dev-a', credential: await enrollAccepted(t, 'dev-a') };
    expect((await a.call('PUT', '/v1/devices/dev-a/desired', { models: { tiny: { version: '1.0.0' } } })).status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    built?.cleanup();
  });

  const get = (sha256: string, headers: Record<string, string> = {}) =>
    request(`${t.http}/v1/artifacts/${sha256}`, { headers: { ...basic(device.id, device.credential), ...headers } });

  it('measures sha256 and length itself and stores the blob at its content address', async () => {
    expect(digests.fp32).toBe(sha(built.fp32.bytes));
    expect(digests.int8).toBe(built.int8.card.sha256);
    const v = await a.call('GET', '/v1/models/tiny/versions/1.0.0');
    expect(v.json.variants.map((x: { id: string; length: number }) => [x.id, x.length])).toEqual([
      ['cpu-int8', built.int8.bytes.length],
      ['onnx-fp32', built.fp32.bytes.length],
    ]);
    expect(storedFiles(t)).toContain(`sha256/${digests.fp32.slice(0, 2)}/${digests.fp32}`);
  });

  it('serves the whole artifact to an entitled device with ETag, Accept-Ranges and Content-Length', async () => {
    const res = await get(digests.fp32);
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe(`"${digests.fp32}"`);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(Number(res.headers['content-length'])).toBe(built.fp32.bytes.length);
    expect(body.equals(built.fp32.bytes)).toBe(true);
  });

  it('answers a byte range with 206 and the exact bytes', async () => {
    const res = await get(digests.fp32, { range: 'bytes=100-199' });
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 100-199/${built.fp32.bytes.length}`);
    expect(body.equals(built.fp32.bytes.subarray(100, 200))).toBe(true);
    const tail = await get(digests.fp32, { range: 'bytes=-10' });
    expect(Buffer.from(await tail.body.arrayBuffer()).equals(built.fp32.bytes.subarray(-10))).toBe(true);
  });

  it('resumes a download cut mid-way from its offset and ends with identical bytes', async () => {
    const total = built.fp32.bytes.length;
    const res = await get(digests.fp32);
    const head: Buffer[] = [];
    let got = 0;
    for await (const chunk of res.body) {
      head.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= total / 3) break; // leaving the loop destroys the body: the connection is cut
    }
    const partial = Buffer.concat(head).subarray(0, Math.floor(total / 3));
    const rest = await get(digests.fp32, { range: `bytes=${partial.length}-`, 'if-range': `"${digests.fp32}"` });
    expect(rest.statusCode).toBe(206);
    const whole = Buffer.concat([partial, Buffer.from(await rest.body.arrayBuffer())]);
    expect(sha(whole)).toBe(digests.fp32);
  });

  it('answers 304 to a matching If-None-Match and the full body to a stale If-Range', async () => {
    const cached = await get(digests.fp32, { 'if-none-match': `"${digests.fp32}"` });
    await cached.body.dump();
    expect(cached.statusCode).toBe(304);
    const stale = await get(digests.fp32, { range: 'bytes=0-9', 'if-range': `"${'f'.repeat(64)}"` });
    expect(stale.statusCode).toBe(200);
    expect(Buffer.from(await stale.body.arrayBuffer()).length).toBe(built.fp32.bytes.length);
  });

  it('refuses a range past the end with 416 and the size in Content-Range', async () => {
    const res = await get(digests.fp32, { range: `bytes=${built.fp32.bytes.length}-` });
    const body = (await res.body.json()) as { code: string };
    expect(res.statusCode).toBe(416);
    expect(body.code).toBe('FLT_ARTIFACT_RANGE_NOT_SATISFIABLE');
    expect(res.headers['content-range']).toBe(`bytes */${built.fp32.bytes.length}`);
  });

  describe('refused uploads leave nothing behind', () => {
    beforeAll(async () => {
      await a.call('POST', '/v1/models/tiny/versions', { version: '2.0.0', metadata: { inputs: built.fp32.card.inputs, outputs: built.fp32.card.outputs } });
      await a.call('POST', '/v1/models/tiny/versions/2.0.0/variants', { id: 'big', format: 'onnx', precision: 'fp32', constraints: {} });
    });
    const path = '/v1/models/tiny/versions/2.0.0/variants/big/artifact';

    it('drops an upload whose client sends less than Content-Length and disconnects', async () => {
      const before = storedFiles(t);
      await truncatedUpload(t, path, 5000, Buffer.alloc(2000, 7));
      await eventually(() => expect(storedFiles(t)).toEqual(before));
      const v = await a.call('GET', '/v1/models/tiny/versions/2.0.0');
      expect(v.json.variants[0].sha256).toBeNull();
    });

    it('refuses an upload announced larger than the maximum with 413', async () => {
      const before = storedFiles(t);
      const res = await a.upload(path, Buffer.alloc(64 * 1024 + 1, 1));
      expect(res.status).toBe(413);
      expect(res.json.code).toBe('FLT_ARTIFACT_TOO_LARGE');
      expect(storedFiles(t)).toEqual(before);
    });

    it('refuses a chunked upload that runs past the maximum with 413', async () => {
      const before = storedFiles(t);
      async function* chunks() {
        for (let i = 0; i < 20; i++) yield Buffer.alloc(8 * 1024, i);
      }
      const res = await request(`${t.http}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/octet-stream' },
        body: Readable.from(chunks()),
      }).catch((err: Error) => err);
      // The server answers 413 and closes the connection mid-upload; the client sees either.
      if (!(res instanceof Error)) {
        expect(res.statusCode).toBe(413);
        await res.body.dump();
      }
      await eventually(() => expect(storedFiles(t)).toEqual(before));
    });

    it('refuses a JSON body and an empty body', async () => {
      expect((await a.call('PUT', path, { not: 'bytes' })).status).toBe(415);
      expect((await a.upload(path, Buffer.alloc(0))).status).toBe(400);
    });

    it('refuses an upload without an operator token before reading it', async () => {
      const res = await request(`${t.http}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(10) });
      expect(res.statusCode).toBe(401);
      await res.body.dump();
    });
  });
});
