import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, enrollBody, startServer, type TestServer } from './helpers/server.ts';

describe('bad input on the REST API', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ http: { bodyLimitBytes: 4096 } });
    await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'dev-1', labels: { site: 'a' } } });
  });
  afterAll(() => t.close());

  const device = async () => (await t.server.http.inject({ method: 'GET', url: '/v1/devices/dev-1', headers: auth(ADMIN_TOKEN) })).json() as { labels: Record<string, string>; updatedAt: number };

  it('answers malformed JSON with 400 FLT_BAD_REQUEST and changes nothing', async () => {
    const before = await device();
    const res = await t.server.http.inject({
      method: 'PATCH',
      url: '/v1/devices/dev-1/labels',
      headers: { ...auth(ADMIN_TOKEN), 'content-type': 'application/json' },
      payload: '{"set": {"site": "b"',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    expect(await device()).toEqual(before);
  });

  it('refuses query numbers that coerce to infinity (Infinity, 1e400) with 400 instead of failing in SQL', async () => {
    for (const limit of ['Infinity', '1e400', '-Infinity']) {
      const res = await t.server.http.inject({ method: 'GET', url: `/v1/devices?limit=${limit}`, headers: auth(ADMIN_TOKEN) });
      expect(res.statusCode, limit).toBe(400);
      expect(res.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    }
  });

  it('answers router-level refusals (a bad percent escape, an overlong path parameter) with an FLT_ code', async () => {
    const badEscape = await t.server.http.inject({ method: 'GET', url: '/v1/devices/%', headers: auth(ADMIN_TOKEN) });
    expect(badEscape.statusCode).toBe(400);
    expect(badEscape.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    const long = await t.server.http.inject({ method: 'GET', url: `/v1/devices/${'a'.repeat(200)}`, headers: auth(ADMIN_TOKEN) });
    expect(long.statusCode).toBeGreaterThanOrEqual(400);
    expect(long.statusCode).toBeLessThan(500);
    expect(long.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
  });

  it('refuses unknown properties instead of dropping them', async () => {
    const res = await t.server.http.inject({ method: 'PATCH', url: '/v1/devices/dev-1/labels', headers: auth(ADMIN_TOKEN), payload: { set: { site: 'b' }, sudo: true } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    expect((await device()).labels).toEqual({ site: 'a' });
  });

  it('answers an oversize body with 413 FLT_PAYLOAD_TOO_LARGE', async () => {
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody('big', { labels: { pad: 'x' }, junk: 'y'.repeat(70_000) }) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'FLT_PAYLOAD_TOO_LARGE' });
  });

  it('answers an unsupported content type with 415 FLT_UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/enroll', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ code: 'FLT_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('refuses invalid label keys and values', async () => {
    for (const set of [{ 'Bad Key': 'x' }, { site: 'has space' }, { site: 'a'.repeat(64) }]) {
      const res = await t.server.http.inject({ method: 'PATCH', url: '/v1/devices/dev-1/labels', headers: auth(ADMIN_TOKEN), payload: { set } });
      expect(res.statusCode, JSON.stringify(set)).toBe(400);
    }
    expect((await device()).labels).toEqual({ site: 'a' });
  });

  it('refuses bad query strings with 400 and a code', async () => {
    for (const qs of ['limit=0', 'limit=100000', 'status=flying', 'label=novalue', 'version=1', 'cursor=%24%24', 'bogus=1']) {
      const res = await t.server.http.inject({ method: 'GET', url: `/v1/devices?${qs}`, headers: auth(ADMIN_TOKEN) });
      expect(res.statusCode, qs).toBe(400);
      expect(res.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    }
  });

  it('answers unknown routes with 404 FLT_NOT_FOUND and path-like ids with 400', async () => {
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/nothing-here', headers: auth(ADMIN_TOKEN) })).json()).toMatchObject({ code: 'FLT_NOT_FOUND' });
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/devices/..%2F..%2Fetc', headers: auth(ADMIN_TOKEN) });
    expect(res.statusCode).toBe(400);
  });

  it('keeps serving after all of the above', async () => {
    expect((await t.server.http.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
