import { FlotillaError, encodeMessage, type DesiredState } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { DeviceFilter, DeviceRecord, DeviceStatus, DeviceStore } from './device-store.ts';
import type { DeviceLink } from './device-link.ts';

export interface FleetAdminDeps {
  db: Db;
  devices: DeviceStore;
  audit: AuditLog;
  link: DeviceLink;
  now: () => number;
}

/** Which admin transitions each state allows. Revoked is final: re-admitting means delete and re-enroll. */
const TRANSITIONS: Record<'accept' | 'reject' | 'revoke', readonly DeviceStatus[]> = {
  accept: ['pending', 'rejected'],
  reject: ['pending', 'preauthorized'],
  revoke: ['accepted', 'pending', 'preauthorized'],
};

/** Admin operations on devices. Every change and its audit entry commit together. */
export class FleetAdmin {
  readonly #d: FleetAdminDeps;

  constructor(deps: FleetAdminDeps) {
    this.#d = deps;
  }

  get(id: string): DeviceRecord {
    const device = this.#d.devices.get(id);
    if (!device) throw new FlotillaError('FLT_DEVICE_NOT_FOUND', `no device ${id}`);
    return device;
  }

  list(filter: DeviceFilter): DeviceRecord[] {
    return this.#d.devices.list(filter);
  }

  preauthorize(actor: AuditActor, id: string, labels: Record<string, string>): DeviceRecord {
    this.#d.db.transaction(() => {
      if (this.#d.devices.getRow(id)) throw new FlotillaError('FLT_CONFLICT', `device ${id} already exists`);
      this.#d.devices.insert({ id, status: 'preauthorized', enrollmentKeyHash: null, labels, inventory: null, now: this.#d.now() });
      this.#d.audit.record(actor, 'device.preauthorize', id, { labels });
    })();
    return this.get(id);
  }

  transition(actor: AuditActor, id: string, action: 'accept' | 'reject' | 'revoke'): DeviceRecord {
    const target: DeviceStatus = action === 'accept' ? 'accepted' : action === 'reject' ? 'rejected' : 'revoked';
    this.#d.db.transaction(() => {
      const current = this.get(id);
      if (!TRANSITIONS[action].includes(current.status)) {
        throw new FlotillaError('FLT_DEVICE_STATE_CONFLICT', `cannot ${action} a device that is ${current.status}`, { status: current.status });
      }
      this.#d.devices.setStatus(id, target, this.#d.now(), { clearCredential: action !== 'accept' });
      this.#d.audit.record(actor, `device.${action}`, id, { from: current.status });
    })();
    // After the commit: the credential is gone, so the live session goes too and cannot come back.
    if (action !== 'accept') this.#d.link.kick(id);
    return this.get(id);
  }

  remove(actor: AuditActor, id: string): void {
    this.#d.db.transaction(() => {
      if (!this.#d.devices.delete(id)) throw new FlotillaError('FLT_DEVICE_NOT_FOUND', `no device ${id}`);
      this.#d.audit.record(actor, 'device.delete', id);
    })();
    this.#d.link.kick(id);
  }

  setLabels(actor: AuditActor, id: string, change: { set?: Record<string, string>; remove?: string[] }): DeviceRecord {
    this.#d.db.transaction(() => {
      const labels = { ...this.get(id).labels, ...(change.set ?? {}) };
      for (const k of change.remove ?? []) delete labels[k];
      if (Object.keys(labels).length > 64) throw new FlotillaError('FLT_BAD_REQUEST', 'a device has at most 64 labels');
      this.#d.devices.setLabels(id, labels, this.#d.now());
      this.#d.audit.record(actor, 'device.labels', id, change);
    })();
    return this.get(id);
  }

  /**
   * Replaces a device's desired state under a new generation and sends it, retained, so the device
   * gets it whenever it next subscribes.
   */
  async setDesired(actor: AuditActor | null, id: string, next: Omit<DesiredState, 'generation'>): Promise<DesiredState> {
    const desired = this.#d.db.transaction((): DesiredState => {
      const device = this.get(id);
      if (device.status === 'revoked' || device.status === 'rejected') {
        throw new FlotillaError('FLT_DEVICE_STATE_CONFLICT', `device ${id} is ${device.status}`);
      }
      const state: DesiredState = { ...next, generation: this.#d.devices.desiredGeneration(id) + 1 };
      this.#d.devices.setDesired(id, state, this.#d.now());
      if (actor) this.#d.audit.record(actor, 'device.desired', id, { generation: state.generation });
      return state;
    })();
    await this.publishDesired(id, desired);
    return desired;
  }

  /**
   * A device reported a generation the server never issued: the database was restored from an
   * older backup. Devices apply only generations above their own, so the server's desired state is
   * issued again above the device's, and every later write counts on from there.
   */
  async catchUpGeneration(id: string, deviceGeneration: number): Promise<DesiredState | null> {
    const desired = this.#d.db.transaction((): DesiredState | null => {
      if (deviceGeneration <= this.#d.devices.desiredGeneration(id)) return null;
      const current = this.get(id).desired;
      if (!current) {
        this.#d.devices.raiseDesiredGeneration(id, deviceGeneration);
        return null;
      }
      const state: DesiredState = { ...current, generation: deviceGeneration + 1 };
      this.#d.devices.setDesired(id, state, this.#d.now());
      return state;
    })();
    if (desired) await this.publishDesired(id, desired);
    return desired;
  }

  async publishDesired(id: string, desired: DesiredState): Promise<void> {
    const { payload } = encodeMessage('desired', desired);
    await this.#d.link.send(id, 'desired', payload, { retain: true });
  }
}
