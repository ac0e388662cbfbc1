import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { DesiredState, ReportedState } from '@flotilla/protocol';
import { openDatabase, type Db } from '../../src/db/open.ts';
import { DeviceStore } from '../../src/fleet/device-store.ts';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { RolloutEngine, type RolloutEngineDeps } from '../../src/rollouts/index.ts';

export const OPERATOR = { name: 'release-bot#abcdef01', role: 'operator' };
/** 2025-01-15 12:00 UTC: winter time in Europe/Paris (UTC+1). */
export const WINTER_NOON = Date.UTC(2025, 0, 15, 12, 0, 0);

/**
 * An engine over a real SQLite file in a temp folder, with a fake clock and a publisher that records
 * what would go to each device. `report()` plays a device: it stores the reported state the way the
 * ingest does and calls the engine's hook.
 */
export class RolloutHarness {
  readonly dir = mkdtempSync(join(tmpdir(), 'flt-rollouts-'));
  readonly db: Db = openDatabase(join(this.dir, 'flotilla.db'));
  readonly devices = new DeviceStore(this.db);
  t: number;
  readonly audit: AuditLog;
  readonly published: Array<{ deviceId: string; desired: DesiredState }> = [];
  engine: RolloutEngine;
  readonly #opts: Partial<RolloutEngineDeps>;

  constructor(opts: Partial<RolloutEngineDeps> & { start?: number } = {}) {
    this.t = opts.start ?? WINTER_NOON;
    this.audit = new AuditLog(this.db, () => this.t);
    this.#opts = opts;
    this.engine = this.newEngine();
  }

  /** A fresh engine over the same database, as after a server crash and restart. */
  newEngine(): RolloutEngine {
    this.engine = new RolloutEngine({
      db: this.db,
      devices: this.devices,
      audit: this.audit,
      now: () => this.t,
      registry: new Registry(),
      publisher: { publishDesired: async (deviceId, desired) => void this.published.push({ deviceId, desired }) },
      ...this.#opts,
    });
    return this.engine;
  }

  advance(ms: number): void {
    this.t += ms;
  }

  addDevices(n: number, labels: Record<string, string> = { group: 'fleet' }, prefix = 'dev'): string[] {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${String(i).padStart(4, '0')}`;
      this.devices.insert({ id, status: 'accepted', enrollmentKeyHash: null, labels, inventory: null, now: this.t });
      ids.push(id);
    }
    return ids;
  }

  setDesiredVersion(deviceId: string, model: string, version: string): void {
    const g = this.devices.desiredGeneration(deviceId) + 1;
    this.devices.setDesired(deviceId, { generation: g, models: { [model]: { version } } }, this.t);
  }

  desired(deviceId: string): DesiredState | null {
    return this.devices.get(deviceId)!.desired;
  }

  /** The device reports, for its current desired generation, `model` at `version` in `state`. */
  report(deviceId: string, model: string, version: string | null, state: ReportedState['models'][string]['state'], extra: { error?: string; silent?: boolean } = {}): void {
    const reported: ReportedState = {
      appliedGeneration: this.devices.desiredGeneration(deviceId),
      models: { [model]: { version, state, ...(extra.error ? { error: extra.error } : {}) } },
    };
    this.devices.setReported(deviceId, reported, this.t);
    if (!extra.silent) this.engine.onDeviceReported(deviceId, reported);
  }

  /** Devices the rollout currently holds in a state. */
  inState(rolloutId: string, state: string): string[] {
    return this.db.prepare('SELECT device_id FROM rollout_devices WHERE rollout_id = ? AND state = ? ORDER BY device_id').pluck().all(rolloutId, state) as string[];
  }

  close(): void {
    if (this.db.open) this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
