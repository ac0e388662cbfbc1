import { decodeMessage, encodeMessage, type UpChannel, type EventMessage, type ReportedState } from '@flotilla/protocol';
import type { Logger } from 'pino';
import type { Db } from '../db/open.ts';
import type { ServerMetrics } from '../metrics/server-metrics.ts';
import type { DeviceStore } from './device-store.ts';
import type { DeviceLink } from './device-link.ts';
import type { FleetAdmin } from './fleet-admin.ts';

export interface DeviceIngestDeps {
  db: Db;
  devices: DeviceStore;
  link: DeviceLink;
  admin: FleetAdmin;
  metrics: ServerMetrics;
  logger: Logger;
  now: () => number;
  /**
   * Per event kind, a handler that stores the event's data elsewhere inside the same transaction
   * and returns what the device event log keeps instead (hard examples keep their tensors in their
   * own table). It must not throw on bad data: it returns an error record, and the event is
   * acknowledged like any other.
   */
  eventSinks?: ReadonlyMap<string, EventSink>;
  /** Called with each valid report once it is stored (the rollout engine judges devices by them). */
  onReported?: (deviceId: string, reported: ReportedState) => void;
}

export type EventSink = (deviceId: string, eventId: string, data: unknown, receivedAt: number) => Record<string, unknown>;

/**
 * Everything devices send up, after the broker's policy let it through: validated here, then
 * applied. An invalid message is counted and dropped; it never changes state.
 *
 * Durable events are batched: all events that arrive in one turn of the event loop commit in one
 * transaction, and only then are they acknowledged to their devices.
 */
export class DeviceIngest {
  readonly #d: DeviceIngestDeps;
  readonly #insertEvent;
  #pending: Array<{ deviceId: string; msg: EventMessage }> = [];
  #flushScheduled = false;

  constructor(deps: DeviceIngestDeps) {
    this.#d = deps;
    this.#insertEvent = deps.db.prepare(
      'INSERT OR IGNORE INTO device_events (device_id, id, seq, kind, data, ts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
  }

  connected(deviceId: string): void {
    this.#d.devices.setOnline(deviceId, true, this.#d.now());
    // Retained messages live in broker memory; after a server restart the desired state must be sent again.
    const desired = this.#d.devices.get(deviceId)?.desired;
    if (desired) {
      this.#d.admin.publishDesired(deviceId, desired).catch((err: unknown) => this.#d.logger.warn({ err, deviceId }, 'could not resend desired state'));
    }
  }

  disconnected(deviceId: string): void {
    // A reconnect replaces the old session before the old one's close is reported: keep it online.
    if (!this.#d.link.isConnected(deviceId)) this.#d.devices.setOnline(deviceId, false, this.#d.now());
  }

  message(deviceId: string, channel: UpChannel, payload: Buffer): void {
    const decoded = decodeMessage(channel, payload);
    if (!decoded.ok) {
      this.#d.metrics.deviceMessagesRejected.inc({ code: decoded.code });
      this.#d.logger.warn({ deviceId, channel, code: decoded.code, reason: decoded.reason }, 'device message refused');
      return;
    }
    this.#d.metrics.deviceMessages.inc({ channel });
    const now = this.#d.now();
    const msg = decoded.message;
    switch (msg.type) {
      case 'status':
        if (msg.body.state === 'online' || !this.#d.link.isConnected(deviceId)) {
          this.#d.devices.setOnline(deviceId, msg.body.state === 'online', now);
        }
        return;
      case 'inventory':
        this.#d.devices.setInventory(deviceId, msg.body, now);
        return;
      case 'heartbeat':
        this.#d.devices.touch(deviceId, now);
        return;
      case 'reported':
        this.#d.devices.setReported(deviceId, msg.body, now);
        if (msg.body.appliedGeneration > this.#d.devices.desiredGeneration(deviceId)) {
          this.#d.logger.warn({ deviceId, deviceGeneration: msg.body.appliedGeneration }, 'device is ahead of the desired state stored here (database restored from an older backup?): issuing it again above');
          this.#d.admin.catchUpGeneration(deviceId, msg.body.appliedGeneration).catch((err: unknown) => this.#d.logger.warn({ err, deviceId }, 'could not issue desired state again'));
        }
        this.#d.onReported?.(deviceId, msg.body);
        return;
      case 'event':
        this.#pending.push({ deviceId, msg });
        this.#scheduleFlush();
        return;
      default:
        // Down-channel types never reach here: the broker refuses device publishes on down channels.
        return;
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Commits pending events, then acknowledges them. Safe to call at any time (shutdown calls it). */
  flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const now = this.#d.now();
    let stored = 0;
    try {
      this.#d.db.transaction(() => {
        for (const { deviceId, msg } of batch) {
          const sink = this.#d.eventSinks?.get(msg.body.kind);
          const data = sink ? sink(deviceId, msg.id, msg.body.data, now) : msg.body.data;
          stored += this.#insertEvent.run(deviceId, msg.id, msg.body.seq, msg.body.kind, JSON.stringify(data), msg.ts, now).changes;
        }
      })();
    } catch (err) {
      // Nothing is acknowledged, so devices keep the events and send them again.
      this.#d.logger.error({ err, count: batch.length }, 'event batch not committed');
      return;
    }
    this.#d.metrics.eventsStored.inc(stored);
    this.#d.metrics.eventsDuplicate.inc(batch.length - stored);
    const byDevice = new Map<string, string[]>();
    for (const { deviceId, msg } of batch) {
      const ids = byDevice.get(deviceId) ?? [];
      ids.push(msg.id);
      byDevice.set(deviceId, ids);
    }
    for (const [deviceId, ids] of byDevice) {
      for (let i = 0; i < ids.length; i += 1000) {
        const { payload } = encodeMessage('ack', { ids: ids.slice(i, i + 1000) });
        this.#d.link.send(deviceId, 'ack', payload, { retain: false }).catch((err: unknown) =>
          this.#d.logger.warn({ err, deviceId }, 'ack not sent; the device will resend and be acknowledged then'),
        );
      }
    }
  }
}
