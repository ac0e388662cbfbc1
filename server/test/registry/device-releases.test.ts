import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';

const metadata = {
  inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 4] }],
  outputs: [{ name: 'output', dtype: 'float32', shape: [-1, 2] }],
  golden: { inputs: { input: { dtype: 'float32', shape: [1, 4], data: [0, 1, 2, 3] } }, outputs: { output: { dtype: 'float32', shape: [1, 2], data: [0.5, 0.5] } }, tolerance: 0.01 },
};

describe('GET /v1/device/releases/:name/:version', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(() => t.close());

  const admin = (method: 'POST' | 'PUT', url: string, payload?: object | Buffer, type?: string) =>
    t.server.http.inject({ method, url, headers: { ...auth(ADMIN_TOKEN), ...(type ? { 'content-type': type } : {}) }, ...(payload ? { payload } : {}) });
  const basic = (id: string, credential: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${credential}`).toString('base64')}` });

  async function published(): Promise<void> {
    await admin('POST', '/v1/models', { name: 'digits' });
    await admin('POST', '/v1/models/digits/versions', { version: '1.0.0', metadata });
    await admin('POST', '/v1/models/digits/versions/1.0.0/variants', { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
    await admin('PUT', '/v1/models/digits/versions/1.0.0/variants/cpu/artifact', randomBytes(64), 'application/octet-stream');
    expect((await admin('POST', '/v1/models/digits/versions/1.0.0/publish', {})).statusCode).toBe(200);
  }

  it('gives an entitled device the signed manifest and the version metadata with its golden vectors', async () => {
    await published();
    const credential = await enrollAccepted(t, 'edge-1');
    await admin('PUT', '/v1/devices/edge-1/desired', { models: { digits: { version: '1.0.0' } } });
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/device/releases/digits/1.0.0', headers: basic('edge-1', credential) });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { release: { signed: { model: string; version: string } }; metadata: typeof metadata; digest: string };
    expect(body.release.signed).toMatchObject({ model: 'digits', version: '1.0.0' });
    expect(body.metadata.golden).toEqual(metadata.golden);
    expect(res.headers.etag).toBe(`"${body.digest}"`);
  });

  it('refuses a device that is not entitled, an unknown release alike, and a caller without a device credential', async () => {
    await published();
    const credential = await enrollAccepted(t, 'edge-2');
    const get = (url: string, headers: Record<string, string>) => t.server.http.inject({ method: 'GET', url, headers });
    expect((await get('/v1/device/releases/digits/1.0.0', basic('edge-2', credential))).json()).toMatchObject({ code: 'FLT_ARTIFACT_NOT_ENTITLED' });
    expect((await get('/v1/device/releases/nosuch/1.0.0', basic('edge-2', credential))).statusCode).toBe(403);
    expect((await get('/v1/device/releases/digits/1.0.0', basic('edge-2', 'wrong-credential'))).statusCode).toBe(401);
    expect((await get('/v1/device/releases/digits/1.0.0', auth(ADMIN_TOKEN))).statusCode).toBe(401);
  });
});
