import { randomUUID } from 'node:crypto';
import type { Db } from '../db/open.ts';
import { hashSecret, newSecret } from './secrets.ts';
import type { Role } from './roles.ts';

export interface ApiPrincipal {
  tokenId: string;
  name: string;
  role: Role;
}

export interface ApiTokenRow {
  id: string;
  name: string;
  role: Role;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
}

/** Admin API tokens: stored only as hashes; the plain token is shown once, at creation. */
export class ApiTokens {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #byHash;

  constructor(db: Db, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.#byHash = db.prepare('SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL');
  }

  authenticate(token: string): ApiPrincipal | null {
    const row = this.#byHash.get(hashSecret(token)) as { id: string; name: string; role: Role } | undefined;
    return row ? { tokenId: row.id, name: row.name, role: row.role } : null;
  }

  create(name: string, role: Role, createdBy: string, plain: string = newSecret('flta')): { id: string; token: string } {
    const id = randomUUID();
    this.#db
      .prepare('INSERT INTO api_tokens (id, name, role, token_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, name, role, hashSecret(plain), this.#now(), createdBy);
    return { id, token: plain };
  }

  list(): ApiTokenRow[] {
    return this.#db
      .prepare('SELECT id, name, role, created_at, created_by, revoked_at FROM api_tokens ORDER BY created_at, id')
      .all() as ApiTokenRow[];
  }

  revoke(id: string): boolean {
    return this.#db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.#now(), id).changes === 1;
  }

  countActiveAdmins(): number {
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL").get() as { n: number }).n;
  }

  hasToken(plain: string): boolean {
    return this.authenticate(plain) !== null;
  }

  /** Whether a token was ever registered, revoked or not: a revoked token is never registered again. */
  isKnown(plain: string): boolean {
    return this.#db.prepare('SELECT 1 FROM api_tokens WHERE token_hash = ?').get(hashSecret(plain)) !== undefined;
  }
}
