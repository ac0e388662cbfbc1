import { randomUUID } from 'node:crypto';
import type { Db } from '../db/open.ts';
import { hashSecret, newSecret } from './secrets.ts';

export interface EnrollmentTokenRow {
  id: string;
  name: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

/** Fleet enrollment tokens: shared by many devices, so they can be listed, expired and revoked. */
export class EnrollmentTokens {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  isValid(plain: string): boolean {
    const row = this.#db
      .prepare('SELECT expires_at FROM enrollment_tokens WHERE token_hash = ? AND revoked_at IS NULL')
      .get(hashSecret(plain)) as { expires_at: number | null } | undefined;
    return row !== undefined && (row.expires_at === null || row.expires_at > this.#now());
  }

  create(name: string, opts: { expiresAt?: number | null; plain?: string } = {}): { id: string; token: string } {
    const id = randomUUID();
    const token = opts.plain ?? newSecret('flte');
    this.#db
      .prepare('INSERT INTO enrollment_tokens (id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, hashSecret(token), this.#now(), opts.expiresAt ?? null);
    return { id, token };
  }

  list(): EnrollmentTokenRow[] {
    return this.#db
      .prepare('SELECT id, name, created_at, expires_at, revoked_at FROM enrollment_tokens ORDER BY created_at, id')
      .all() as EnrollmentTokenRow[];
  }

  revoke(id: string): boolean {
    return this.#db.prepare('UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.#now(), id).changes === 1;
  }

  count(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM enrollment_tokens WHERE revoked_at IS NULL').get() as { n: number }).n;
  }

  has(plain: string): boolean {
    return (this.#db.prepare('SELECT 1 FROM enrollment_tokens WHERE token_hash = ?').get(hashSecret(plain)) as unknown) !== undefined;
  }
}
