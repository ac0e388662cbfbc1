import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type AgentDatabase = Database.Database;

export const DATABASE_FILE = 'agent.db';

/**
 * Schema migrations, applied in order and recorded in `user_version`. Append only: a shipped
 * migration never changes, because devices in the field have already run it.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE desired_state (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     generation INTEGER NOT NULL,
     doc TEXT NOT NULL,
     received_at INTEGER NOT NULL
   );
   CREATE TABLE reported_state (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     applied_generation INTEGER NOT NULL,
     models TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );
   -- AUTOINCREMENT so a seq is never reused, even after the newest entries are acked and deleted.
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL,
     data TEXT NOT NULL,
     priority INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX outbox_eviction ON outbox (priority, seq);`,
];

/** Opens (creating if needed) `<dataDir>/agent.db` in WAL mode and brings its schema up to date. */
export function openAgentDatabase(dataDir: string): AgentDatabase {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, DATABASE_FILE);
  const db = new Database(path);
  try {
    // Events and desired state are the device's business only; SQLite gives -wal/-shm the same mode.
    chmodSync(path, 0o600);
    db.pragma('journal_mode = WAL');
    // FULL: a committed outbox entry must survive power loss, not only a process crash.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

function migrate(db: AgentDatabase): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
