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
  {
    version: 2,
    name: 'model registry, artifacts, signing keys, entitlements',
    sql: `
      CREATE TABLE models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE model_versions (
        model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('draft', 'awaiting-signature', 'published')),
        metadata TEXT NOT NULL,
        release_counter INTEGER,
        manifest TEXT,
        manifest_digest TEXT,
        signatures TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        published_at INTEGER,
        PRIMARY KEY (model, version)
      );
      -- The release counter only goes up per model; two versions can never share one.
      CREATE UNIQUE INDEX model_versions_counter ON model_versions(model, release_counter) WHERE release_counter IS NOT NULL;

      CREATE TABLE model_variants (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        id TEXT NOT NULL,
        format TEXT NOT NULL CHECK (format IN ('onnx', 'tensorrt-plan')),
        precision TEXT NOT NULL CHECK (precision IN ('fp32', 'fp16', 'int8')),
        constraints TEXT NOT NULL DEFAULT '{}',
        file_name TEXT NOT NULL,
        sha256 TEXT,
        length INTEGER,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (model, version, id),
        UNIQUE (model, version, file_name),
        FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
      );
      CREATE INDEX model_variants_by_sha ON model_variants(sha256);

      -- One row: the trusted-keys document, replaced whole by each applied rotation.
      CREATE TABLE trusted_keys (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      -- Every applied rotation in order, so a device that missed some can apply them in sequence.
      CREATE TABLE key_rotations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        statement TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      );

      CREATE TABLE entitlements (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        granted_at INTEGER NOT NULL,
        PRIMARY KEY (device_id, model, version)
      );

      -- The version each device was desired to run before its current one, per model, so a device
      -- told to revert can still download the release it is going back to. A trigger keeps it, so
      -- every writer of desired state (admin API, rollout engine) is covered without knowing of it.
      CREATE TABLE previous_desired (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        replaced_at INTEGER NOT NULL,
        PRIMARY KEY (device_id, model)
      );
      CREATE TRIGGER devices_keep_previous_desired AFTER UPDATE OF desired ON devices
      WHEN OLD.desired IS NOT NULL
      BEGIN
        INSERT INTO previous_desired (device_id, model, version, replaced_at)
          SELECT OLD.id, old_m.key, json_extract(old_m.value, '$.version'), NEW.updated_at
          FROM json_each(OLD.desired, '$.models') AS old_m
          WHERE json_extract(old_m.value, '$.version') IS NOT
                json_extract(NEW.desired, '$.models."' || old_m.key || '".version')
        ON CONFLICT (device_id, model) DO UPDATE SET version = excluded.version, replaced_at = excluded.replaced_at;
      END;
    `,
  },
  {
    version: 3,
    name: 'staged rollouts',
    sql: `
      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        name TEXT,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'awaitingApproval', 'paused', 'completed', 'cancelled', 'reverted', 'preempted')),
        stage INTEGER NOT NULL DEFAULT 0,
        stage_started_at INTEGER,
        priority INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        -- Abort rules count outcomes from here on; resuming an aborted rollout moves it forward.
        outcomes_since INTEGER NOT NULL,
        last_join_scan_at INTEGER,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finished_at INTEGER
      );
      CREATE INDEX rollouts_by_state ON rollouts(state, model);
      CREATE INDEX rollouts_by_created ON rollouts(created_at, id);

      CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        rank TEXT NOT NULL,
        stage INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'notified', 'succeeded', 'failed', 'rejected', 'timedOut', 'reverted', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        from_version TEXT,
        generation INTEGER,
        variant TEXT,
        activate_after INTEGER,
        notified_at INTEGER,
        healthy_since INTEGER,
        succeed_at INTEGER,
        deadline_at INTEGER,
        finished_at INTEGER,
        error TEXT,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (rollout_id, device_id)
      );
      CREATE INDEX rollout_devices_queue ON rollout_devices(rollout_id, state, stage, rank);
      CREATE INDEX rollout_devices_by_device ON rollout_devices(device_id, state);
      CREATE INDEX rollout_devices_by_notify ON rollout_devices(rollout_id, notified_at);

      CREATE TABLE rollout_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        stage INTEGER,
        kind TEXT NOT NULL,
        device_id TEXT,
        details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX rollout_events_by_rollout ON rollout_events(rollout_id, id);
      CREATE INDEX rollout_events_funnel ON rollout_events(rollout_id, stage, kind);
    `,
  },
  {
    version: 4,
    name: 'escalation: pools, policies, hard examples',
    sql: `
      CREATE TABLE pools (
        name TEXT PRIMARY KEY,
        region TEXT NOT NULL,
        endpoints TEXT NOT NULL,
        models TEXT NOT NULL,
        weight INTEGER NOT NULL DEFAULT 100,
        capacity INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE escalation_policies (
        model TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );

      -- One row per hard-example event; (device_id, event_id) makes a resent event a no-op.
      CREATE TABLE hard_examples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        answered_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (device_id, event_id)
      );
      CREATE INDEX hard_examples_by_model ON hard_examples(model, at, seq);
      CREATE INDEX hard_examples_by_time ON hard_examples(at, seq);
    `,
  },
  {
    version: 5,
    name: 'retention: receipt-time indexes',
    sql: `
      -- The retention sweep removes rows by the server's receipt time, oldest first, in batches.
      CREATE INDEX device_events_by_received ON device_events(received_at);
      CREATE INDEX hard_examples_by_received ON hard_examples(received_at);
    `,
  },
];
