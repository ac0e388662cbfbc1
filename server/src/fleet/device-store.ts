import type { Inventory, ReportedState, DesiredState } from '@flotilla/protocol';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/open.ts';

export type DeviceStatus = 'preauthorized' | 'pending' | 'accepted' | 'rejected' | 'revoked';

export interface DeviceRecord {
  id: string;
  status: DeviceStatus;
  labels: Record<string, string>;
  inventory: Inventory | null;
  online: boolean;
  lastSeenAt: number | null;
  desired: DesiredState | null;
  reported: ReportedState | null;
  reportedAt: number | null;
  createdAt: number;
  updatedAt: number;
  statusChangedAt: number;
}

interface DeviceRow {
  id: string;
  status: DeviceStatus;
  enrollment_key_hash: string | null;
  credential_hash: string | null;
  labels: string;
  inventory: string | null;
  online: number;
  last_seen_at: number | null;
  desired: string | null;
  desired_generation: number;
  reported: string | null;
  reported_generation: number | null;
  reported_at: number | null;
  created_at: number;
  updated_at: number;
  status_changed_at: number;
}

export interface DeviceFilter {
  status?: DeviceStatus;
  online?: boolean;
  labels?: Record<string, string>;
  model?: string;
  version?: string;
  /** Keyset paging: ids strictly greater than this. */
  after?: string;
  limit: number;
}

function parse<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function toRecord(r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    status: r.status,
    labels: JSON.parse(r.labels) as Record<string, string>,
    inventory: parse<Inventory>(r.inventory),
    online: r.online === 1,
    lastSeenAt: r.last_seen_at,
    desired: parse<DesiredState>(r.desired),
    reported: parse<ReportedState>(r.reported),
    reportedAt: r.reported_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    statusChangedAt: r.status_changed_at,
  };
}

/** SQL for the devices table. No policy here: the fleet service decides, this only reads and writes. */
export class DeviceStore {
  readonly #db: Db;
  readonly #get;
  readonly #byCredential;
  readonly #touch;
  readonly #setOnline;
  /** Statements are compiled once: the rollout engine and ingest call these thousands of times a second. */
  readonly #statements = new Map<string, Statement>();

  constructor(db: Db) {
    this.#db = db;
    this.#get = db.prepare('SELECT * FROM devices WHERE id = ?');
    this.#byCredential = db.prepare("SELECT credential_hash FROM devices WHERE id = ? AND status = 'accepted'");
    this.#touch = db.prepare('UPDATE devices SET last_seen_at = ? WHERE id = ?');
    this.#setOnline = db.prepare('UPDATE devices SET online = ?, last_seen_at = ? WHERE id = ?');
  }

  #stmt(sql: string): Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  getRow(id: string): DeviceRow | undefined {
    return this.#get.get(id) as DeviceRow | undefined;
  }

  get(id: string): DeviceRecord | null {
    const row = this.getRow(id);
    return row ? toRecord(row) : null;
  }

  /** Credential hash of an accepted device, or null for any other state. */
  activeCredentialHash(id: string): string | null {
    const row = this.#byCredential.get(id) as { credential_hash: string | null } | undefined;
    return row?.credential_hash ?? null;
  }

  insert(d: { id: string; status: DeviceStatus; enrollmentKeyHash: string | null; labels: Record<string, string>; inventory: Inventory | null; now: number }): void {
    this.#stmt(
        `INSERT INTO devices (id, status, enrollment_key_hash, labels, inventory, created_at, updated_at, status_changed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(d.id, d.status, d.enrollmentKeyHash, JSON.stringify(d.labels), d.inventory ? JSON.stringify(d.inventory) : null, d.now, d.now, d.now);
  }

  setStatus(id: string, status: DeviceStatus, now: number, opts: { clearCredential?: boolean } = {}): void {
    this.#stmt(
        `UPDATE devices SET status = ?, status_changed_at = ?, updated_at = ?
           ${opts.clearCredential ? ', credential_hash = NULL, online = 0' : ''} WHERE id = ?`,
      )
      .run(status, now, now, id);
  }

  setEnrollment(id: string, fields: { enrollmentKeyHash: string; labels: Record<string, string>; inventory: Inventory | null }, now: number): void {
    this.#stmt('UPDATE devices SET enrollment_key_hash = ?, labels = ?, inventory = COALESCE(?, inventory), updated_at = ? WHERE id = ?')
      .run(fields.enrollmentKeyHash, JSON.stringify(fields.labels), fields.inventory ? JSON.stringify(fields.inventory) : null, now, id);
  }

  setCredential(id: string, credentialHash: string, now: number): void {
    this.#stmt('UPDATE devices SET credential_hash = ?, credential_issued_at = ?, updated_at = ? WHERE id = ?').run(credentialHash, now, now, id);
  }

  setLabels(id: string, labels: Record<string, string>, now: number): void {
    this.#stmt('UPDATE devices SET labels = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(labels), now, id);
  }

  setInventory(id: string, inventory: Inventory, now: number): void {
    this.#stmt('UPDATE devices SET inventory = ?, last_seen_at = ? WHERE id = ?').run(JSON.stringify(inventory), now, id);
  }

  setDesired(id: string, desired: DesiredState, now: number): void {
    this.#stmt('UPDATE devices SET desired = ?, desired_generation = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(desired), desired.generation, now, id);
  }

  /** Moves the generation counter up without a desired document (see FleetAdmin.catchUpGeneration). */
  raiseDesiredGeneration(id: string, generation: number): void {
    this.#stmt('UPDATE devices SET desired_generation = ? WHERE id = ? AND desired_generation < ?').run(generation, id, generation);
  }

  desiredGeneration(id: string): number {
    return (this.#stmt('SELECT desired_generation AS g FROM devices WHERE id = ?').get(id) as { g: number } | undefined)?.g ?? 0;
  }

  setReported(id: string, reported: ReportedState, now: number): void {
    this.#stmt('UPDATE devices SET reported = ?, reported_generation = ?, reported_at = ?, last_seen_at = ? WHERE id = ?')
      .run(JSON.stringify(reported), reported.appliedGeneration, now, now, id);
  }

  touch(id: string, now: number): void {
    this.#touch.run(now, id);
  }

  setOnline(id: string, online: boolean, now: number): void {
    this.#setOnline.run(online ? 1 : 0, now, id);
  }

  /** Marks every device offline: at start-up nobody is connected yet, whatever the last run left behind. */
  resetPresence(): void {
    this.#stmt('UPDATE devices SET online = 0 WHERE online = 1').run();
  }

  delete(id: string): boolean {
    return this.#stmt('DELETE FROM devices WHERE id = ?').run(id).changes === 1;
  }

  list(f: DeviceFilter): DeviceRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.status !== undefined) {
      where.push('status = ?');
      args.push(f.status);
    }
    if (f.online !== undefined) {
      where.push('online = ?');
      args.push(f.online ? 1 : 0);
    }
    for (const [k, v] of Object.entries(f.labels ?? {})) {
      // Label keys are validated against a pattern without quotes, so quoting them in the path is safe.
      where.push(`json_extract(labels, '$."' || ? || '"') = ?`);
      args.push(k, v);
    }
    if (f.model !== undefined) {
      const path = `'$.models."' || ? || '".version'`;
      if (f.version !== undefined) {
        where.push(`json_extract(reported, ${path}) = ?`);
        args.push(f.model, f.version);
      } else {
        where.push(`json_extract(reported, ${path}) IS NOT NULL`);
        args.push(f.model);
      }
    }
    if (f.after !== undefined) {
      where.push('id > ?');
      args.push(f.after);
    }
    const sql = `SELECT * FROM devices ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ?`;
    return (this.#stmt(sql).all(...args, f.limit) as DeviceRow[]).map(toRecord);
  }

  countByStatus(): Array<{ status: DeviceStatus; online: number; n: number }> {
    return this.#stmt('SELECT status, online, COUNT(*) AS n FROM devices GROUP BY status, online').all() as Array<{
      status: DeviceStatus;
      online: number;
      n: number;
    }>;
  }
}
