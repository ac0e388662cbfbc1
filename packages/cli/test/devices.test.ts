import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollBody, startServer, type TestServer } from '../../../server/test/helpers/server.ts';
import { adminEnv } from './helpers/env.ts';
import { flotilla } from './helpers/run-cli.ts';

describe('flotilla devices', () => {
  let t: TestServer;
  let env: Record<string, string>;

  const enroll = async (id: string, labels: Record<string, string>) => {
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody(id, { labels }) });
    expect(res.statusCode).toBe(202);
  };
  const ids = (run: { json(): { items: Array<{ id: string }> } }) => run.json().items.map((d) => d.id);

  beforeAll(async () => {
    t = await startServer();
    env = adminEnv(t);
    await enroll('cam-1', { site: 'lab', tier: 'canary' });
    await enroll('cam-2', { site: 'lab' });
    await enroll('cam-3', { site: 'depot' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists pending devices, accepts and rejects them, and filters by status and labels', async () => {
    expect(ids(await flotilla(['devices', 'list', '--status', 'pending', '--json'], { env }))).toEqual(['cam-1', 'cam-2', 'cam-3']);

    const accepted = await flotilla(['devices', 'accept', 'cam-1'], { env });
    expect([accepted.code, accepted.stdout]).toEqual([0, 'cam-1: accepted\n']);
    expect((await flotilla(['devices', 'accept', 'cam-2', '--json'], { env })).json()).toMatchObject({ id: 'cam-2', status: 'accepted' });
    expect((await flotilla(['devices', 'reject', 'cam-3'], { env })).code).toBe(0);

    expect(ids(await flotilla(['devices', 'list', '--status', 'accepted', '--json'], { env }))).toEqual(['cam-1', 'cam-2']);
    expect(ids(await flotilla(['devices', 'list', '--label', 'site=lab', '--label', 'tier=canary', '--json'], { env }))).toEqual(['cam-1']);
    const table = await flotilla(['devices', 'list', '--label', 'site=lab'], { env });
    expect(table.stdout).toMatch(/^DEVICE\s+STATUS\s+PRESENCE/);
    expect(table.stdout).toMatch(/^cam-1\s+accepted\s+offline\s+-\s+no\s+-\s+site=lab,tier=canary$/m);
  });

  it('stops at --limit and says more devices match', async () => {
    const run = await flotilla(['devices', 'list', '--limit', '2'], { env });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('(more devices match; raise --limit above 2)');
    expect((await flotilla(['devices', 'list', '--limit', '2', '--json'], { env })).json()).toMatchObject({ more: true, items: [{ id: 'cam-1' }, { id: 'cam-2' }] });
  });

  it('shows one device and revokes it; a refused transition exits 1 with the server code', async () => {
    const show = await flotilla(['devices', 'show', 'cam-1'], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^status:\s+accepted since /m);
    expect(show.stdout).toMatch(/^labels:\s+site=lab,tier=canary$/m);

    expect((await flotilla(['devices', 'revoke', 'cam-1', '--json'], { env })).json().status).toBe('revoked');
    const again = await flotilla(['devices', 'accept', 'cam-1'], { env });
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('FLT_DEVICE_STATE_CONFLICT')]);
    const missing = await flotilla(['devices', 'show', 'nobody'], { env });
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('FLT_DEVICE_NOT_FOUND')]);
  });
});
