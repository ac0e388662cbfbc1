import { FlotillaError, type EscalationPolicy, type EscalationPolicyView, type PoolBody, type PoolView } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';

interface PoolRow {
  name: string;
  region: string;
  endpoints: string;
  models: string;
  weight: number;
  capacity: number;
  created_at: number;
  updated_at: number;
}

function toView(r: PoolRow): PoolView {
  return {
    name: r.name,
    region: r.region,
    endpoints: JSON.parse(r.endpoints) as string[],
    models: JSON.parse(r.models) as string[],
    weight: r.weight,
    capacity: r.capacity,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export const DEFAULT_POOL_WEIGHT = 100;

/** The pool registry and the per-model escalation policies, in SQLite. Callers own the transactions. */
export class PoolStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  listPools(): PoolView[] {
    return (this.#db.prepare('SELECT * FROM pools ORDER BY name').all() as PoolRow[]).map(toView);
  }

  getPool(name: string): PoolView {
    const row = this.#db.prepare('SELECT * FROM pools WHERE name = ?').get(name) as PoolRow | undefined;
    if (!row) throw new FlotillaError('FLT_POOL_NOT_FOUND', `no pool ${name}`, { name });
    return toView(row);
  }

  /** Creates or replaces a pool; returns it and whether it is new. */
  putPool(name: string, body: PoolBody, now: number): { pool: PoolView; created: boolean } {
    const existing = this.#db.prepare('SELECT created_at FROM pools WHERE name = ?').get(name) as { created_at: number } | undefined;
    this.#db
      .prepare(
        `INSERT INTO pools (name, region, endpoints, models, weight, capacity, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET region = excluded.region, endpoints = excluded.endpoints, models = excluded.models,
           weight = excluded.weight, capacity = excluded.capacity, updated_at = excluded.updated_at`,
      )
      .run(name, body.region, JSON.stringify(body.endpoints.map((e) => e.replace(/\/+$/, ''))), JSON.stringify(body.models), body.weight ?? DEFAULT_POOL_WEIGHT, body.capacity ?? 0, existing?.created_at ?? now, now);
    return { pool: this.getPool(name), created: !existing };
  }

  deletePool(name: string): void {
    if (this.#db.prepare('DELETE FROM pools WHERE name = ?').run(name).changes === 0) throw new FlotillaError('FLT_POOL_NOT_FOUND', `no pool ${name}`, { name });
  }

  listPolicies(): EscalationPolicyView[] {
    const rows = this.#db.prepare('SELECT model, policy, updated_at FROM escalation_policies ORDER BY model').all() as Array<{ model: string; policy: string; updated_at: number }>;
    return rows.map((r) => ({ model: r.model, policy: JSON.parse(r.policy) as EscalationPolicy, updatedAt: r.updated_at }));
  }

  getPolicy(model: string): EscalationPolicyView {
    const r = this.#db.prepare('SELECT model, policy, updated_at FROM escalation_policies WHERE model = ?').get(model) as { model: string; policy: string; updated_at: number } | undefined;
    if (!r) throw new FlotillaError('FLT_ESCALATION_POLICY_NOT_FOUND', `no escalation policy for ${model}`, { model });
    return { model: r.model, policy: JSON.parse(r.policy) as EscalationPolicy, updatedAt: r.updated_at };
  }

  putPolicy(model: string, policy: EscalationPolicy, now: number): EscalationPolicyView {
    this.#db
      .prepare('INSERT INTO escalation_policies (model, policy, updated_at) VALUES (?, ?, ?) ON CONFLICT (model) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at')
      .run(model, JSON.stringify(policy), now);
    return this.getPolicy(model);
  }

  deletePolicy(model: string): void {
    if (this.#db.prepare('DELETE FROM escalation_policies WHERE model = ?').run(model).changes === 0) {
      throw new FlotillaError('FLT_ESCALATION_POLICY_NOT_FOUND', `no escalation policy for ${model}`, { model });
    }
  }
}
