import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, schemaVersion } from '../src/db/open.ts';
import { MIGRATIONS } from '../src/db/migrations.ts';
import { startServer, type TestServer } from './helpers/server.ts';

describe('server lifecycle', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('serves liveness, readiness, metrics and the OpenAPI document', async () => {
    t = await startServer();
    expect((await fetch(`${t.http}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${t.http}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await (await fetch(`${t.http}/metrics`)).text();
    expect(metrics).toContain('flotilla_devices');
    expect(metrics).toContain('flotilla_server_process_resident_memory_bytes');
    const doc = (await (await fetch(`${t.http}/docs/json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/enroll', '/v1/devices', '/v1/devices/{id}', '/v1/audit']));
    expect((await fetch(`${t.http}/docs/`)).status).toBe(200);
  });

  it('can be closed twice, and reports not ready while closing', async () => {
    t = await startServer();
    const first = t.server.close();
    const second = t.server.close();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    expect(t.server.db.open).toBe(false);
  });

  it('runs in WAL mode and applies each migration once across restarts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-db-'));
    try {
      const file = join(dir, 'x.db');
      const a = openDatabase(file);
      expect(a.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(schemaVersion(a)).toBe(MIGRATIONS.at(-1)!.version);
      a.close();
      const b = openDatabase(file);
      expect((b.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n).toBe(MIGRATIONS.length);
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a database written by a newer server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-db-'));
    try {
      const file = join(dir, 'x.db');
      const a = openDatabase(file);
      a.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
      a.close();
      expect(() => openDatabase(file)).toThrow(/newer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('generates an admin token and an enrollment token on first start and writes them owner-only', async () => {
    const { startServer: start } = await import('./helpers/server.ts');
    t = await start({ adminToken: undefined, enrollmentToken: undefined });
    const { readSecretFile } = await import('../src/index.ts');
    const admin = readSecretFile(t.dataDir, 'admin-token');
    expect(admin).toMatch(/^flta_/);
    expect(t.server.bootstrap.adminToken).toBe(admin);
    const { statSync } = await import('node:fs');
    expect(statSync(join(t.dataDir, 'admin-token')).mode & 0o077).toBe(0);
    const res = await fetch(`${t.http}/v1/devices`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
  });

  it('keeps a revoked configured admin token revoked across a restart, and still starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-revoked-admin-'));
    try {
      t = await startServer({}, { dataDir: dir });
      const { ADMIN_TOKEN, auth, tokenFor } = await import('./helpers/server.ts');
      const second = await tokenFor(t, 'admin');
      const list = (await t.server.http.inject({ method: 'GET', url: '/v1/tokens', headers: auth(second) })).json() as { items: Array<{ id: string; created_by: string }> };
      const configured = list.items.find((x) => x.created_by === 'config')!;
      expect((await t.server.http.inject({ method: 'DELETE', url: `/v1/tokens/${configured.id}`, headers: auth(second) })).statusCode).toBeLessThan(300);
      await t.close();
      // Same configuration (the revoked token still configured), same database.
      t = await startServer({}, { dataDir: dir });
      expect((await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(ADMIN_TOKEN) })).statusCode).toBe(401);
      expect((await t.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(second) })).statusCode).toBe(200);
    } finally {
      await t?.close();
      t = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
