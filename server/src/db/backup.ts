import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';

export interface BackupOptions {
  /**
   * Pages copied per step; the event loop runs between steps. SQLite restarts a backup whenever
   * another connection writes to the source between two steps, so on a busy server small steps may
   * start over many times. The default copies every page in one step, inside one read transaction:
   * in WAL mode that blocks no writer and always finishes.
   */
  pagesPerStep?: number;
  /** Replace an existing destination file (default: refuse). */
  overwrite?: boolean;
  /** Called after each step that leaves pages to copy (never when one step copied everything). */
  onProgress?: (progress: { totalPages: number; remainingPages: number }) => void;
}

export interface BackupResult {
  source: string;
  destination: string;
  bytes: number;
  pages: number;
  /** Newest migration applied in the copy (`schema_migrations`). */
  schemaVersion: number;
  integrity: 'ok';
}

const ALL_PAGES = 0x7fffffff;

function failed(message: string, details?: Record<string, unknown>): FlotillaError {
  return new FlotillaError('FLT_BACKUP_FAILED', message, details);
}

function removeDatabaseFiles(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function schemaVersionOf(db: Database.Database): number | null {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return null;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Checks a finished copy and turns it into one self-contained file: integrity_check must answer
 * `ok`, and the journal mode goes from WAL (copied from the source's header) to DELETE, so the copy
 * needs no -wal or -shm beside it. The server switches it back to WAL when it opens it.
 */
function verifyCopy(path: string): { schemaVersion: number; pages: number } {
  const db = new Database(path, { fileMustExist: true });
  try {
    const problems = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw failed('the copy did not pass PRAGMA integrity_check', { problems: problems.slice(0, 20) });
    }
    db.pragma('journal_mode = DELETE');
    const version = schemaVersionOf(db);
    if (version === null) throw failed('the copy holds no schema_migrations table');
    return { schemaVersion: version, pages: db.pragma('page_count', { simple: true }) as number };
  } finally {
    db.close();
  }
}

/**
 * Online backup of the server database with SQLite's backup API, safe while the server runs and
 * writes (WAL): the copy is one consistent snapshot, checked with `PRAGMA integrity_check`, written
 * under a temporary name beside the destination and renamed into place only once verified, so a
 * failed backup never leaves a file that looks like a good one. The copy is owner-readable only
 * (it holds credential and token hashes).
 */
export async function backupDatabase(srcPath: string, destPath: string, opts: BackupOptions = {}): Promise<BackupResult> {
  const source = resolve(srcPath);
  const destination = resolve(destPath);
  if (source === destination) throw failed('the destination is the source database itself', { source });
  if (!existsSync(source)) throw failed(`no database at ${source}`, { source });
  if (!existsSync(dirname(destination))) throw failed(`the destination folder ${dirname(destination)} does not exist`, { destination });
  if (!opts.overwrite && existsSync(destination)) throw failed(`${destination} already exists (pass --overwrite to replace it)`, { destination });
  const pagesPerStep = opts.pagesPerStep ?? ALL_PAGES;
  if (!Number.isInteger(pagesPerStep) || pagesPerStep < 1) throw new TypeError('pagesPerStep must be a positive integer');

  const src = new Database(source, { fileMustExist: true });
  const partial = `${destination}.partial-${randomBytes(6).toString('hex')}`;
  try {
    // A writer holding the lock for a moment must not fail the backup.
    src.pragma('busy_timeout = 5000');
    if (schemaVersionOf(src) === null) throw failed(`${source} is not a Flotilla server database (no schema_migrations table)`, { source });
    await src.backup(partial, {
      progress: (p) => {
        opts.onProgress?.(p);
        return pagesPerStep;
      },
    });
    const { schemaVersion, pages } = verifyCopy(partial);
    chmodSync(partial, 0o600);
    fsyncPath(partial);
    renameSync(partial, destination);
    fsyncPath(dirname(destination));
    return { source, destination, bytes: statSync(destination).size, pages, schemaVersion, integrity: 'ok' };
  } catch (err) {
    removeDatabaseFiles(partial);
    if (err instanceof FlotillaError) throw err;
    throw failed(`backup of ${source} failed: ${(err as Error).message}`, { source });
  } finally {
    src.close();
  }
}
