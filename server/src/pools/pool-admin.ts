import type { DesiredState, EscalationPolicy, EscalationPolicyView, ModelEscalation, PoolBody, PoolView } from '@flotilla/protocol';
import type { Logger } from 'pino';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { Db } from '../db/open.ts';
import type { DeviceStore } from '../fleet/device-store.ts';
import type { DesiredPublisher } from '../rollouts/desired-writer.ts';
import type { PoolStore } from './pool-store.ts';
import { escalationFor } from './routing.ts';

export interface PoolAdminDeps {
  db: Db;
  store: PoolStore;
  devices: DeviceStore;
  audit: AuditLog;
  publisher: DesiredPublisher;
  logger: Pick<Logger, 'warn'>;
  now: () => number;
}

interface DeviceRow {
  id: string;
  labels: string;
  desired: string | null;
}

/**
 * Changes to pools and escalation policies. Each change commits with its audit entry and with the
 * new escalation section of every accepted device whose section it changed (under a new desired
 * generation), then the changed desired states are published.
 */
export class PoolAdmin {
  readonly #d: PoolAdminDeps;

  constructor(deps: PoolAdminDeps) {
    this.#d = deps;
  }

  get store(): PoolStore {
    return this.#d.store;
  }

  async putPool(actor: AuditActor, name: string, body: PoolBody): Promise<{ pool: PoolView; created: boolean }> {
    return this.#change(() => {
      const out = this.#d.store.putPool(name, body, this.#d.now());
      this.#d.audit.record(actor, out.created ? 'pool.create' : 'pool.update', name, { region: body.region, endpoints: body.endpoints.length, models: body.models });
      return out;
    });
  }

  async deletePool(actor: AuditActor, name: string): Promise<void> {
    await this.#change(() => {
      this.#d.store.deletePool(name);
      this.#d.audit.record(actor, 'pool.delete', name);
    });
  }

  async putPolicy(actor: AuditActor, model: string, policy: EscalationPolicy): Promise<EscalationPolicyView> {
    return this.#change(() => {
      const view = this.#d.store.putPolicy(model, policy, this.#d.now());
      this.#d.audit.record(actor, 'escalation.policy.set', model, { policy });
      return view;
    });
  }

  async deletePolicy(actor: AuditActor, model: string): Promise<void> {
    await this.#change(() => {
      this.#d.store.deletePolicy(model);
      this.#d.audit.record(actor, 'escalation.policy.delete', model);
    });
  }

  /**
   * Brings one device's escalation section up to date (on connect: a device accepted or relabelled
   * since the last change, or whose desired state an admin replaced, gets its routing back).
   */
  async syncDevice(id: string): Promise<void> {
    const changed = this.#d.db.transaction(() => {
      const row = this.#d.db.prepare("SELECT id, labels, desired FROM devices WHERE id = ? AND status = 'accepted'").get(id) as DeviceRow | undefined;
      if (!row) return [];
      const next = this.#rewrite(row, this.#d.store.listPolicies(), this.#d.store.listPools());
      return next ? [next] : [];
    })();
    await this.#publish(changed);
  }

  async #change<T>(apply: () => T): Promise<T> {
    const { result, changed } = this.#d.db.transaction(() => {
      const result = apply();
      const policies = this.#d.store.listPolicies();
      const pools = this.#d.store.listPools();
      const rows = this.#d.db.prepare("SELECT id, labels, desired FROM devices WHERE status = 'accepted'").all() as DeviceRow[];
      const changed: Array<{ id: string; desired: DesiredState }> = [];
      for (const row of rows) {
        const next = this.#rewrite(row, policies, pools);
        if (next) changed.push(next);
      }
      return { result, changed };
    })();
    await this.#publish(changed);
    return result;
  }

  /** The device's desired state with its new escalation section, or null when nothing changed. */
  #rewrite(row: DeviceRow, policies: EscalationPolicyView[], pools: PoolView[]): { id: string; desired: DesiredState } | null {
    const labels = JSON.parse(row.labels) as Record<string, string>;
    const current = row.desired ? (JSON.parse(row.desired) as DesiredState) : null;
    const section = escalationFor(policies, pools, labels.region);
    const empty = Object.keys(section).length === 0;
    if (sameSection(current?.escalation, empty ? undefined : section)) return null;
    const { escalation: _old, ...rest } = current ?? { models: {} };
    const desired: DesiredState = { ...rest, models: current?.models ?? {}, ...(!empty && { escalation: section }), generation: this.#d.devices.desiredGeneration(row.id) + 1 };
    this.#d.devices.setDesired(row.id, desired, this.#d.now());
    return { id: row.id, desired };
  }

  async #publish(changed: ReadonlyArray<{ id: string; desired: DesiredState }>): Promise<void> {
    await Promise.all(
      changed.map(({ id, desired }) =>
        this.#d.publisher.publishDesired(id, desired).catch((err: unknown) => this.#d.logger.warn({ err, deviceId: id }, 'escalation routing not published; the device gets it on its next connect')),
      ),
    );
  }
}

function sameSection(a: Record<string, ModelEscalation> | undefined, b: Record<string, ModelEscalation> | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
