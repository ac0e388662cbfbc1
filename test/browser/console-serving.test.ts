import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, tokenFor, type TestServer } from '../../server/test/helpers/server.ts';
import { CONSOLE_FILES } from '../../server/src/console/plugin.ts';

/** What the server sends for the console and the two routes the console added, without a browser. */
describe('console files and the routes behind the console', () => {
  let t: TestServer;
  let viewer: string;

  beforeAll(async () => {
    t = await startServer();
    viewer = await tokenFor(t, 'viewer');
  });
  afterAll(async () => t?.close());

  const get = (url: string, headers: Record<string, string> = {}) => t.server.http.inject({ method: 'GET', url, headers });

  it('redirects / and /console to /console/', async () => {
    for (const url of ['/', '/console']) {
      const res = await get(url);
      expect(res.statusCode).toBe(302);
      expect(res.headers.location).toBe('/console/');
    }
  });

  it('serves every console file with its type and a strict content security policy', async () => {
    for (const name of ['', ...CONSOLE_FILES.filter((f) => f !== 'index.html')]) {
      const res = await get(`/console/${name}`);
      expect(res.statusCode, name).toBe(200);
      expect(res.headers['content-type']).toMatch(name === '' ? /^text\/html/ : name.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('keeps the page free of inline script and style, and of anything fetched from elsewhere', async () => {
    for (const name of CONSOLE_FILES) {
      const body = (await get(`/console/${name === 'index.html' ? '' : name}`)).body;
      expect(body, name).not.toMatch(/https?:\/\//);
      expect(body, name).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML\(|document\.write\(/);
    }
    const html = (await get('/console/')).body;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/i);
  });

  it('answers 404 for any path that is not a console file, including attempts to leave the folder', async () => {
    for (const url of ['/console/nope.js', '/console/../plugin.ts', '/console/%2e%2e/plugin.ts', '/console/js/../../plugin.ts', '/console/js/']) {
      expect((await get(url)).statusCode, url).toBe(404);
    }
  });

  it('tells a token its name and role at GET /v1/me, and refuses a request without one', async () => {
    expect((await get('/v1/me', auth(viewer))).json()).toMatchObject({ name: 'viewer-token', role: 'viewer' });
    expect((await get('/v1/me', auth(ADMIN_TOKEN))).json()).toMatchObject({ role: 'admin' });
    expect((await get('/v1/me')).statusCode).toBe(401);
  });

  it('counts the fleet at GET /v1/fleet/summary', async () => {
    await enrollAccepted(t, 'edge-1');
    await enrollAccepted(t, 'edge-2');
    const res = await get('/v1/fleet/summary', auth(viewer));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ total: 2, byStatus: { accepted: 2 }, online: 0, offline: 2, modelVersions: [], agentVersions: [] });
  });
});
