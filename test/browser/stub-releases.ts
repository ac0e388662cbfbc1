import { randomBytes } from 'node:crypto';
import { ADMIN_TOKEN, auth, type TestServer } from '../../server/test/helpers/server.ts';

const tensor = { name: 'x', dtype: 'float32', shape: [-1, 4] };

/**
 * Publishes `model@version` through the registry's REST API with one CPU variant whose artifact is
 * random bytes: a rollout needs a published release, and the scripted devices never load the file.
 */
export async function publishStubRelease(t: TestServer, model: string, version: string): Promise<void> {
  const call = async (method: 'POST' | 'PUT', url: string, payload: object | Buffer, contentType?: string): Promise<void> => {
    const res = await t.server.http.inject({ method, url, headers: { ...auth(ADMIN_TOKEN), ...(contentType ? { 'content-type': contentType } : {}) }, payload });
    // The model may exist already from an earlier version.
    if (res.statusCode >= 300 && !(res.statusCode === 409 && url === '/v1/models')) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  };
  const base = `/v1/models/${model}/versions`;
  await call('POST', '/v1/models', { name: model });
  await call('POST', base, { version, metadata: { inputs: [tensor], outputs: [tensor] } });
  await call('POST', `${base}/${version}/variants`, { id: 'cpu', format: 'onnx', precision: 'fp32', constraints: {} });
  await call('PUT', `${base}/${version}/variants/cpu/artifact`, randomBytes(256), 'application/octet-stream');
  await call('POST', `${base}/${version}/publish`, {});
}
