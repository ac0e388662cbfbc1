import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/audit-log.ts';
import { backupDatabase } from '../src/db/backup.ts';
import { MIGRATIONS } from '../src/db/migrations.ts';
import { openDatabase } from '../src/db/open.ts';
import { ADMIN_TOKEN, auth, startServer, type TestServer } from './helpers/server.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const backupMain = join(repoRoot, 'server/src/backup-main.ts');

async function preauthorize(t: TestServer, id: string): Promise<void> {
  const res = await t.server.http.inject({ method: 'POST', url: '/v1/devices', headers: auth(ADMIN_TOKEN), payload: { id } });
  if (res.statusCode !== 201) throw new Error(`pre-authorize ${id} failed: ${res.statusCode} ${res.body}`);
}

function runBackupCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', backupMain, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

describe('online database backup', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  it('copies a running server database, written to by another connection mid-copy, into a verified file holding every committed row', async () => {
    const t = await startServer();
    cleanups.push(() => t.close());
    for (let i = 0; i < 40; i++) await preauthorize(t, `before-${i}`);
    const out = tempDir('flt-backup-');
    const dest = join(out, 'flotilla-backup.db');

    // The server's own connection writes numbered audit rows between the backup's steps, so the
    // copy is taken while the source changes underneath it (SQLite restarts the copy each time).
    const audit = new AuditLog(t.server.db, Date.now);
    let written = 0;
    const result = await backupDatabase(join(t.dataDir, 'flotilla.db'), dest, {
      pagesPerStep: 1,
      onProgress: () => {
        if (written < 25) audit.record({ name: 'backup-test', role: 'admin' }, 'test.write', `row-${written++}`);
      },
    });
    expect(written).toBe(25);
    expect(result).toMatchObject({ destination: dest, integrity: 'ok', schemaVersion: MIGRATIONS.at(-1)!.version });
    expect(statSync(dest).mode & 0o077).toBe(0);
    expect(readdirSync(out)).toEqual(['flotilla-backup.db']);

    const copy = new Database(dest, { readonly: true, fileMustExist: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(copy.pragma('journal_mode', { simple: true })).toBe('delete');
      const ids = (copy.prepare("SELECT id FROM devices WHERE id LIKE 'before-%'").all() as Array<{ id: string }>).map((r) => r.id);
      expect(ids.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `before-${i}`).sort());
      // One snapshot: the rows written during the copy are all there, in order, with no gap.
      const targets = (copy.prepare("SELECT target FROM audit_log WHERE action = 'test.write' ORDER BY id").all() as Array<{ target: string }>).map((r) => r.target);
      expect(targets).toEqual(Array.from({ length: targets.length }, (_, i) => `row-${i}`));
      expect(targets.length).toBe(25);
    } finally {
      copy.close();
    }
  });

  it('restores: a server started on the copy, with the keys folder beside it, serves the backed-up fleet and can still sign', async () => {
    const t = await startServer();
    cleanups.push(() => t.close());
    for (let i = 0; i < 5; i++) await preauthorize(t, `kept-${i}`);
    const keysBefore = (await t.server.http.inject({ method: 'GET', url: '/v1/keys' })).json() as { serverKeyId: string | null };
    const out = tempDir('flt-backup-');
    await backupDatabase(join(t.dataDir, 'flotilla.db'), join(out, 'flotilla.db'));
    await preauthorize(t, 'after-backup');

    // Restore into an empty data folder: the database file plus the signing key.
    const restored = tempDir('flt-restored-');
    cpSync(join(out, 'flotilla.db'), join(restored, 'flotilla.db'));
    cpSync(join(t.dataDir, 'keys'), join(restored, 'keys'), { recursive: true });
    const r = await startServer({}, { dataDir: restored });
    cleanups.push(() => r.close());
    const list = (await r.server.http.inject({ method: 'GET', url: '/v1/devices', headers: auth(ADMIN_TOKEN) })).json() as { items: Array<{ id: string }> };
    expect(list.items.map((d) => d.id).sort()).toEqual(['kept-0', 'kept-1', 'kept-2', 'kept-3', 'kept-4']);
    const keysAfter = (await r.server.http.inject({ method: 'GET', url: '/v1/keys' })).json() as { serverKeyId: string | null };
    expect(keysAfter.serverKeyId).toBe(keysBefore.serverKeyId);
    expect(keysAfter.serverKeyId).not.toBeNull();
  });

  it('refuses an existing destination unless told to overwrite, and a file that is not a server database, leaving nothing behind', async () => {
    const dir = tempDir('flt-backup-');
    const db = openDatabase(join(dir, 'src.db'));
    db.close();
    writeFileSync(join(dir, 'taken.db'), 'precious');
    await expect(backupDatabase(join(dir, 'src.db'), join(dir, 'taken.db'))).rejects.toMatchObject({ code: 'FLT_BACKUP_FAILED' });
    const again = await backupDatabase(join(dir, 'src.db'), join(dir, 'taken.db'), { overwrite: true });
    expect(again.integrity).toBe('ok');

    const foreign = new Database(join(dir, 'other.db'));
    foreign.exec('CREATE TABLE t (x)');
    foreign.close();
    await expect(backupDatabase(join(dir, 'other.db'), join(dir, 'copy.db'))).rejects.toMatchObject({ code: 'FLT_BACKUP_FAILED' });
    await expect(backupDatabase(join(dir, 'missing.db'), join(dir, 'copy2.db'))).rejects.toMatchObject({ code: 'FLT_BACKUP_FAILED' });
    expect(readdirSync(dir).sort()).toEqual(['other.db', 'src.db', 'taken.db']);
  });

  it('backs up the database of the configured data folder from the command line, with exit statuses 0, 1 and 2', async () => {
    const dataDir = tempDir('flt-data-');
    const db = openDatabase(join(dataDir, 'flotilla.db'));
    db.close();
    const out = tempDir('flt-backup-');
    mkdirSync(join(out, 'nightly'));
    const env = { ...process.env, FLOTILLA_DATA_DIR: dataDir, FLOTILLA_CONFIG: '' };

    const [ok, usage] = await Promise.all([runBackupCli([join(out, 'nightly', 'flotilla.db')], env), runBackupCli([], env)]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('integrity ok');
    expect(existsSync(join(out, 'nightly', 'flotilla.db'))).toBe(true);

    const exists = await runBackupCli([join(out, 'nightly', 'flotilla.db')], env);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/^FLT_BACKUP_FAILED: /);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage:');
  });
});
