import type { Db } from '../db/open.ts';

export interface AuditActor {
  name: string;
  role: string;
}

export interface AuditEntry {
  id: number;
  ts: number;
  actor: string;
  role: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  since?: number;
  until?: number;
  /** Entries with id below this (newest first paging). */
  before?: number;
  limit: number;
}

/** Append-only record of every admin change: who, what, when. Written in the same transaction as the change. */
export class AuditLog {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #insert;

  constructor(db: Db, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.#insert = db.prepare('INSERT INTO audit_log (ts, actor, role, action, target, details) VALUES (?, ?, ?, ?, ?, ?)');
  }

  record(actor: AuditActor, action: string, target: string | null, details: Record<string, unknown> = {}): void {
    this.#insert.run(this.#now(), actor.name, actor.role, action, target, JSON.stringify(details));
  }

  query(q: AuditQuery): AuditEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.actor !== undefined) {
      where.push('actor = ?');
      args.push(q.actor);
    }
    if (q.action !== undefined) {
      where.push('action = ?');
      args.push(q.action);
    }
    if (q.target !== undefined) {
      where.push('target = ?');
      args.push(q.target);
    }
    if (q.since !== undefined) {
      where.push('ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('ts < ?');
      args.push(q.until);
    }
    if (q.before !== undefined) {
      where.push('id < ?');
      args.push(q.before);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...args, q.limit) as Array<Omit<AuditEntry, 'details'> & { details: string }>;
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
  }
}
