/**
 * Versioned schema migrations. Append only: a shipped migration is never edited, because a
 * database in the field has already run it. Each runs in its own transaction.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'fleet, tokens, audit',
    sql: `
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('preauthorized', 'pending', 'accepted', 'rejected', 'revoked')),
        enrollment_key_hash TEXT,
        credential_hash TEXT UNIQUE,
        credential_issued_at INTEGER,
        labels TEXT NOT NULL DEFAULT '{}',
        inventory TEXT,
        online INTEGER NOT NULL DEFAULT 0,
        last_seen_at INTEGER,
        desired TEXT,
        desired_generation INTEGER NOT NULL DEFAULT 0,
        reported TEXT,
        reported_generation INTEGER,
        reported_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        status_changed_at INTEGER NOT NULL
      );
      CREATE INDEX devices_status ON devices(status, id);

      CREATE TABLE device_events (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        ts INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (device_id, id)
      );
      CREATE INDEX device_events_by_seq ON device_events(device_id, seq);

      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at INTEGER
      );

      CREATE TABLE enrollment_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
      );

      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_by_ts ON audit_log(ts);
    `,
  },
];
