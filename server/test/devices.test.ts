import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, startServer, type TestServer } from './helpers/server.ts';

describe('device admin API', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer();
    for (let i = 0; i < 7; i++) {
      const labels = { site: i % 2 === 0 ? 'lyon' : 'oslo', tier: i < 3 ? 'canary' : 'main' };
      await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: `dev-${i}`, labels } });
    }
  });
  afterAll(() => t.close());

  const get = async (url: string) => {
    const res = await t.server.http.inject({ method: 'GET', url, headers: auth(ADMIN_TOKEN) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { items: Array<{ id: string }>; nextCursor: string | null };
  };

  it('pages through every device exactly once with a cursor', async () => {
    const seen: string[] = [];
    let url = '/v1/devices?limit=3';
    for (;;) {
      const page = await get(url);
      seen.push(...page.items.map((d) => d.id));
      if (!page.nextCursor) break;
      url = `/v1/devices?limit=3&cursor=${page.nextCursor}`;
    }
    expect(seen).toEqual(['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5', 'dev-6']);
  });

  it('filters by several labels at once and by status', async () => {
    expect((await get('/v1/devices?label=site=lyon&label=tier=canary')).items.map((d) => d.id)).toEqual(['dev-0', 'dev-2']);
    expect((await get('/v1/devices?status=preauthorized&label=site=oslo')).items).toHaveLength(3);
    expect((await get('/v1/devices?status=accepted')).items).toHaveLength(0);
    expect((await get('/v1/devices?online=false')).items).toHaveLength(7);
  });

  it('sets and removes labels and records who did it in the audit log', async () => {
    const res = await t.server.http.inject({
      method: 'PATCH',
      url: '/v1/devices/dev-3/labels',
      headers: auth(ADMIN_TOKEN),
      payload: { set: { rack: 'r7' }, remove: ['tier'] },
    });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { labels: unknown }).labels).toEqual({ site: 'oslo', rack: 'r7' });
    const audit = (await get('/v1/audit?target=dev-3')) as unknown as { items: Array<{ action: string; actor: string; details: unknown; ts: number }> };
    expect(audit.items[0]).toMatchObject({ action: 'device.labels', details: { set: { rack: 'r7' }, remove: ['tier'] } });
    expect(audit.items[0]!.actor).toMatch(/^bootstrap-admin#/);
    expect(audit.items[0]!.ts).toBeGreaterThan(0);
  });

  it('bumps the desired generation on every change', async () => {
    const put = (models: object) =>
      t.server.http.inject({ method: 'PUT', url: '/v1/devices/dev-4/desired', headers: auth(ADMIN_TOKEN), payload: { models } });
    expect(((await put({ digits: { version: '1.0.0' } })).json() as { desired: { generation: number } }).desired.generation).toBe(1);
    const second = (await put({ digits: { version: '2.0.0' } })).json() as { desired: { generation: number; models: object }; inSync: boolean };
    expect(second.desired).toEqual({ generation: 2, models: { digits: { version: '2.0.0' } } });
    expect(second.inSync).toBe(false);
  });

  it('filters audit entries by action and pages newest first', async () => {
    const page = (await get('/v1/audit?action=device.preauthorize&limit=2')) as unknown as { items: Array<{ id: number; target: string }>; nextCursor: string };
    expect(page.items.map((e) => e.target)).toEqual(['dev-6', 'dev-5']);
    const next = (await get(`/v1/audit?action=device.preauthorize&limit=2&cursor=${page.nextCursor}`)) as unknown as { items: Array<{ target: string }> };
    expect(next.items.map((e) => e.target)).toEqual(['dev-4', 'dev-3']);
  });
});
