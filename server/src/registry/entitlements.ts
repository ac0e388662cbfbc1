import { FlotillaError } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';

/**
 * A device is entitled to a published release (its manifest and every artifact in it) when:
 * its desired state names that model at that version; or that version is the one it was desired to
 * run before (kept by a trigger on `devices.desired`, so a revert can still download); or an explicit
 * grant exists (written by rollouts ahead of the desired change, or by an operator).
 */
const ENTITLED = `
  v.state = 'published' AND (
    json_extract(d.desired, '$.models."' || v.model || '".version') = v.version
    OR EXISTS (SELECT 1 FROM previous_desired p WHERE p.device_id = d.id AND p.model = v.model AND p.version = v.version)
    OR EXISTS (SELECT 1 FROM entitlements e WHERE e.device_id = d.id AND e.model = v.model AND e.version = v.version)
  )`;

export class Entitlements {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #now: () => number;
  readonly #bySha;
  readonly #byRelease;

  constructor(deps: { db: Db; audit: AuditLog; now: () => number }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#now = deps.now;
    this.#bySha = deps.db.prepare(`
      SELECT 1 FROM model_variants va
      JOIN model_versions v ON v.model = va.model AND v.version = va.version
      JOIN devices d ON d.id = ?
      WHERE va.sha256 = ? AND ${ENTITLED} LIMIT 1`);
    this.#byRelease = deps.db.prepare(`
      SELECT 1 FROM model_versions v JOIN devices d ON d.id = ?
      WHERE v.model = ? AND v.version = ? AND ${ENTITLED}`);
  }

  /**
   * Grants one device one release. Idempotent. The version must exist (it need not be published
   * yet: a rollout may grant ahead). With an actor, the grant is audited in the same transaction.
   */
  grant(deviceId: string, model: string, version: string, actor?: AuditActor): void {
    this.#db.transaction(() => {
      if (!this.#db.prepare('SELECT 1 FROM devices WHERE id = ?').get(deviceId)) throw new FlotillaError('FLT_DEVICE_NOT_FOUND', `no device ${deviceId}`);
      if (!this.#db.prepare('SELECT 1 FROM model_versions WHERE model = ? AND version = ?').get(model, version)) {
        throw new FlotillaError('FLT_REGISTRY_VERSION_NOT_FOUND', `no version ${model}@${version}`);
      }
      this.#db
        .prepare('INSERT INTO entitlements (device_id, model, version, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(deviceId, model, version, this.#now());
      if (actor) this.#audit.record(actor, 'entitlement.grant', deviceId, { model, version });
    })();
  }

  /** Removes an explicit grant (desired-state entitlement is unaffected). True when one existed. */
  revoke(deviceId: string, model: string, version: string, actor?: AuditActor): boolean {
    return this.#db.transaction(() => {
      const removed = this.#db.prepare('DELETE FROM entitlements WHERE device_id = ? AND model = ? AND version = ?').run(deviceId, model, version).changes === 1;
      if (removed && actor) this.#audit.record(actor, 'entitlement.revoke', deviceId, { model, version });
      return removed;
    })();
  }

  /** True when some published release the device is entitled to contains this artifact. */
  isEntitled(deviceId: string, sha256: string): boolean {
    return this.#bySha.get(deviceId, sha256) !== undefined;
  }

  isEntitledToRelease(deviceId: string, model: string, version: string): boolean {
    return this.#byRelease.get(deviceId, model, version) !== undefined;
  }
}
