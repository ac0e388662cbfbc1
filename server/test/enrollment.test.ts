import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, enrollBody, startServer, type TestServer } from './helpers/server.ts';

describe('device enrollment', () => {
  let t: TestServer;
  afterEach(() => t?.close());

  const enroll = (payload: object) => t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload });
  const admin = (method: 'POST' | 'GET', url: string) => t.server.http.inject({ method, url, headers: auth(ADMIN_TOKEN) });

  it('keeps a new device pending until an admin accepts it, then hands out a credential', async () => {
    t = await startServer();
    const first = await enroll(enrollBody('cam-1'));
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ status: 'pending', deviceId: 'cam-1' });
    expect((await admin('GET', '/v1/devices/cam-1')).json()).toMatchObject({ status: 'pending' });

    expect((await admin('POST', '/v1/devices/cam-1/accept')).statusCode).toBe(200);
    const second = await enroll(enrollBody('cam-1'));
    expect(second.statusCode).toBe(200);
    const body = second.json() as { status: string; credential: string; mqtt: { tcp: string } };
    expect(body.status).toBe('accepted');
    expect(body.credential).toMatch(/^fltd_/);
    expect(body.mqtt.tcp).toBe(t.mqtt);
  });

  it('refuses a wrong fleet token with 401 FLT_ENROLL_TOKEN_INVALID and creates nothing', async () => {
    t = await startServer();
    const res = await enroll(enrollBody('cam-2', { enrollmentToken: 'flte_wrong-token-wrong-token-wrong' }));
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'FLT_ENROLL_TOKEN_INVALID' });
    expect((await admin('GET', '/v1/devices/cam-2')).statusCode).toBe(404);
  });

  it('refuses a second claimant of an enrolled id (different enrollment key) with FLT_ENROLL_KEY_MISMATCH', async () => {
    t = await startServer({ autoAccept: true });
    expect((await enroll(enrollBody('cam-3'))).statusCode).toBe(200);
    const thief = await enroll(enrollBody('cam-3', { enrollmentKey: 'attacker-key-attacker-key-attacker-key' }));
    expect(thief.statusCode).toBe(403);
    expect(thief.json()).toMatchObject({ code: 'FLT_ENROLL_KEY_MISMATCH' });
  });

  it('admits a pre-authorized id at its first enrollment and keeps the admin labels', async () => {
    t = await startServer();
    const pre = await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id: 'cam-4', labels: { site: 'lyon' } } });
    expect(pre.statusCode).toBe(201);
    const res = await enroll(enrollBody('cam-4', { labels: { site: 'elsewhere', tier: 'edge' } }));
    expect(res.statusCode).toBe(200);
    const dev = (await admin('GET', '/v1/devices/cam-4')).json() as { status: string; labels: Record<string, string> };
    expect(dev.status).toBe('accepted');
    expect(dev.labels).toEqual({ site: 'lyon', tier: 'edge' });
  });

  it('answers FLT_ENROLL_REJECTED to a rejected device and FLT_DEVICE_REVOKED to a revoked one', async () => {
    t = await startServer();
    await enroll(enrollBody('cam-5'));
    await admin('POST', '/v1/devices/cam-5/reject');
    expect((await enroll(enrollBody('cam-5'))).json()).toMatchObject({ code: 'FLT_ENROLL_REJECTED' });

    await enroll(enrollBody('cam-6'));
    await admin('POST', '/v1/devices/cam-6/accept');
    expect((await enroll(enrollBody('cam-6'))).statusCode).toBe(200);
    await admin('POST', '/v1/devices/cam-6/revoke');
    const res = await enroll(enrollBody('cam-6'));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'FLT_DEVICE_REVOKED' });
  });

  it('refuses transitions a state does not allow with 409 FLT_DEVICE_STATE_CONFLICT', async () => {
    t = await startServer({ autoAccept: true });
    await enroll(enrollBody('cam-7'));
    await admin('POST', '/v1/devices/cam-7/revoke');
    const res = await admin('POST', '/v1/devices/cam-7/accept');
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'FLT_DEVICE_STATE_CONFLICT' });
  });

  it('keeps only hashes of credentials and tokens in the database files', async () => {
    t = await startServer({ autoAccept: true });
    const { credential } = (await enroll(enrollBody('cam-8'))).json() as { credential: string };
    await t.server.close();
    const blobs = readdirSync(t.dataDir)
      .filter((f) => f.startsWith('flotilla.db'))
      .map((f) => readFileSync(join(t.dataDir, f)).toString('latin1'))
      .join('');
    expect(blobs.length).toBeGreaterThan(0);
    expect(blobs).not.toContain(credential);
    expect(blobs).not.toContain(ADMIN_TOKEN);
    expect(blobs).not.toContain(enrollBody('cam-8').enrollmentKey);
  });

  it('refuses device ids that could escape a topic level', async () => {
    t = await startServer({ autoAccept: true });
    for (const id of ['a/b', 'a+b', 'a#', '$SYS', '../x', '', 'x'.repeat(65)]) {
      const res = await enroll(enrollBody('x', { deviceId: id }));
      expect(res.statusCode, id).toBe(400);
      expect(res.json()).toMatchObject({ code: 'FLT_BAD_REQUEST' });
    }
    expect(((await admin('GET', '/v1/devices')).json() as { items: unknown[] }).items).toHaveLength(0);
  });
});
