import type { Statement } from 'better-sqlite3';
import type { AgentDatabase } from '../storage/database.ts';

/** One verified model file a slot points at: enough to load it again after a restart, offline. */
export interface SlotEntry {
  version: string;
  /** Content address in the local cache (`models/sha256/<sha256>`). */
  sha256: string;
  length: number;
  format: 'onnx' | 'tensorrt-plan';
  /** Execution provider the variant was resolved for. */
  provider: string;
  variantId: string;
  releaseCounter: number;
  /** manifestDigest of the release this file came from. */
  digest: string;
}

/**
 * The A/B slots of one model. `active` serves; `previous` is the last version that served before it
 * (the rollback target); `pending` is a candidate being loaded that has not taken traffic yet. Only
 * a committed `active` ever counts after a restart.
 */
export interface ModelSlots {
  model: string;
  active: SlotEntry | null;
  previous: SlotEntry | null;
  pending: SlotEntry | null;
  /** True once the active version passed its health window. */
  activeHealthy: boolean;
}

export interface FailedRelease {
  model: string;
  version: string;
  code: string;
  at: number;
}

// Own tables, created on open: the OTA state lives next to the outbox in agent.db, so one WAL
// commit covers a slot switch and the release counter it accepts.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS ota_slots (
    model TEXT PRIMARY KEY,
    active TEXT,
    previous TEXT,
    pending TEXT,
    active_healthy INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS ota_release_counters (
    model TEXT PRIMARY KEY,
    release_counter INTEGER NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS ota_failed_releases (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    code TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (model, version)
  );`;

interface SlotRow {
  model: string;
  active: string | null;
  previous: string | null;
  pending: string | null;
  active_healthy: number;
}

const parse = (text: string | null): SlotEntry | null => (text === null ? null : (JSON.parse(text) as SlotEntry));
const text = (entry: SlotEntry | null): string | null => (entry === null ? null : JSON.stringify(entry));

/** Slots, accepted release counters and releases that failed here, in agent.db. Every change is one transaction. */
export class OtaStore {
  readonly #db: AgentDatabase;
  readonly #now: () => number;
  readonly #get: Statement;
  readonly #all: Statement;
  readonly #put: Statement;
  readonly #del: Statement;
  readonly #getCounter: Statement;
  readonly #putCounter: Statement;
  readonly #getFailed: Statement;
  readonly #putFailed: Statement;

  constructor(db: AgentDatabase, now: () => number) {
    this.#db = db;
    this.#now = now;
    db.exec(SCHEMA);
    this.#get = db.prepare('SELECT * FROM ota_slots WHERE model = ?');
    this.#all = db.prepare('SELECT * FROM ota_slots ORDER BY model');
    this.#put = db.prepare(
      `INSERT INTO ota_slots (model, active, previous, pending, active_healthy, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (model) DO UPDATE SET active = excluded.active, previous = excluded.previous, pending = excluded.pending,
       active_healthy = excluded.active_healthy, updated_at = excluded.updated_at`,
    );
    this.#del = db.prepare('DELETE FROM ota_slots WHERE model = ?');
    this.#getCounter = db.prepare('SELECT release_counter, digest FROM ota_release_counters WHERE model = ?');
    this.#putCounter = db.prepare(
      `INSERT INTO ota_release_counters (model, release_counter, digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (model) DO UPDATE SET release_counter = excluded.release_counter, digest = excluded.digest, updated_at = excluded.updated_at
       WHERE excluded.release_counter >= ota_release_counters.release_counter`,
    );
    this.#getFailed = db.prepare('SELECT model, version, code, at FROM ota_failed_releases WHERE model = ? AND version = ?');
    this.#putFailed = db.prepare('INSERT OR REPLACE INTO ota_failed_releases (model, version, code, at) VALUES (?, ?, ?, ?)');
  }

  slots(model: string): ModelSlots {
    const row = this.#get.get(model) as SlotRow | undefined;
    return row ? this.#fromRow(row) : { model, active: null, previous: null, pending: null, activeHealthy: false };
  }

  allSlots(): ModelSlots[] {
    return (this.#all.all() as SlotRow[]).map((r) => this.#fromRow(r));
  }

  /** Writes the whole row at once (callers compute the next row from the current one). */
  saveSlots(slots: ModelSlots): void {
    if (!slots.active && !slots.previous && !slots.pending) {
      this.#del.run(slots.model);
      return;
    }
    this.#put.run(slots.model, text(slots.active), text(slots.previous), text(slots.pending), slots.activeHealthy ? 1 : 0, this.#now());
  }

  /**
   * The switch commit: the pending candidate becomes active, the old active becomes previous, and
   * the release counter is accepted, in one transaction. A crash before it leaves the old active.
   */
  commitSwitch(model: string): ModelSlots {
    return this.#db.transaction(() => {
      const s = this.slots(model);
      if (!s.pending) throw new Error(`no pending slot for ${model}`);
      const next: ModelSlots = { model, active: s.pending, previous: s.active ?? s.previous, pending: null, activeHealthy: false };
      this.saveSlots(next);
      this.acceptRelease(model, s.pending.releaseCounter, s.pending.digest);
      return next;
    })();
  }

  /** Back to the previous slot (health failure, or a revert): the version left is dropped from the slots. */
  commitRollback(model: string, opts: { keepLeftAsPrevious?: boolean } = {}): ModelSlots {
    return this.#db.transaction(() => {
      const s = this.slots(model);
      const next: ModelSlots = { model, active: s.previous, previous: opts.keepLeftAsPrevious ? s.active : null, pending: null, activeHealthy: s.previous !== null };
      this.saveSlots(next);
      return next;
    })();
  }

  lastAccepted(model: string): { releaseCounter: number; digest: string } | undefined {
    const row = this.#getCounter.get(model) as { release_counter: number; digest: string } | undefined;
    return row ? { releaseCounter: row.release_counter, digest: row.digest } : undefined;
  }

  /** Raises the accepted counter; never lowers it (the WHERE clause of the upsert). */
  acceptRelease(model: string, releaseCounter: number, digest: string): void {
    this.#putCounter.run(model, releaseCounter, digest, this.#now());
  }

  failed(model: string, version: string): FailedRelease | undefined {
    return this.#getFailed.get(model, version) as FailedRelease | undefined;
  }

  recordFailure(model: string, version: string, code: string): void {
    this.#putFailed.run(model, version, code, this.#now());
  }

  #fromRow(row: SlotRow): ModelSlots {
    return { model: row.model, active: parse(row.active), previous: parse(row.previous), pending: parse(row.pending), activeHealthy: row.active_healthy === 1 };
  }
}
