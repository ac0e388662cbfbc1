import { randomUUID } from 'node:crypto';
import {
  DRIFT_CLEARED_EVENT,
  DRIFT_DETECTED_EVENT,
  DRIFT_SUMMARY_EVENT,
  DriftSummaryData as DriftSummaryDataSchema,
  type DeviceDriftScore,
  type DriftReport,
  type DriftScore,
  type DriftSummary,
  type DriftSummaryData,
} from '@flotilla/protocol';
import type { Logger } from 'pino';
import { Compile } from 'typebox/compile';
import type { Db } from '../db/open.ts';
import { mergeSummaries, scoreSummary, type DriftThresholds } from './psi.ts';

const checkSummary = Compile(DriftSummaryDataSchema);

/** What the tracker reports to Prometheus; the server's metrics object implements it. */
export interface DriftGauges {
  setPsi(model: string, version: string, scope: 'fleet' | 'worst-device', psi: number | null): void;
  countEvent(model: string, version: string, kind: 'detected' | 'cleared'): void;
}

export interface DriftTrackerDeps {
  db: Db;
  thresholds: DriftThresholds;
  /** The version's registered reference; undefined when it has none (nothing is scored). */
  reference(model: string, version: string): DriftSummary | undefined;
  gauges: DriftGauges;
  logger: Logger;
  now: () => number;
  /** Windows kept per device and version, newest first (default 64). */
  maxWindows?: number;
}

interface Window {
  eventId: string;
  summary: DriftSummary;
}

interface DeviceVersion {
  deviceId: string;
  model: string;
  version: string;
  /** Oldest first. */
  windows: Window[];
  updatedAt: number;
  /** A `drift.detected` was raised and not cleared yet. */
  raised: boolean;
}

const keyOf = (deviceId: string, model: string, version: string) => `${deviceId}\u0000${model}\u0000${version}`;

/**
 * Scores each device's live traffic for each model version against the version's reference
 * (docs/registry.md "Drift"). Summaries arrive as `drift.summary` events through the ingest's
 * event sink; scoring runs right after their transaction. A device crossing the threshold gets
 * one `drift.detected` device event, and one `drift.cleared` once its score is back under it.
 * State is rebuilt from the event log at start.
 */
export class DriftTracker {
  readonly #d: DriftTrackerDeps;
  readonly #maxWindows: number;
  readonly #state = new Map<string, DeviceVersion>();
  readonly #dirty = new Set<string>();
  readonly #references = new Map<string, DriftSummary | undefined>();
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #closed = false;
  readonly #insert;
  readonly #seqOf;

  constructor(deps: DriftTrackerDeps) {
    this.#d = deps;
    this.#maxWindows = deps.maxWindows ?? 64;
    this.#insert = deps.db.prepare('INSERT OR IGNORE INTO device_events (device_id, id, seq, kind, data, ts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#seqOf = deps.db.prepare('SELECT seq FROM device_events WHERE device_id = ? AND id = ?').pluck();
    this.#reload();
  }

  /**
   * Event sink for `drift.summary`: keeps the window and returns what the event log stores (the
   * summary itself, so a restart can rebuild). Runs inside the ingest transaction; never throws.
   */
  ingest(deviceId: string, eventId: string, data: unknown, receivedAt: number): Record<string, unknown> {
    if (!checkSummary.Check(data)) {
      const first = checkSummary.Errors(data)[0];
      return { code: 'FLT_DRIFT_SUMMARY_INVALID', reason: first ? `${first.instancePath || '/'} ${first.message}`.slice(0, 200) : 'invalid' };
    }
    this.#add(deviceId, eventId, data, receivedAt);
    this.#scheduleJudge();
    return data;
  }

  /** Per device and fleet-wide scores of one version (GET /v1/models/:name/versions/:version/drift). */
  report(model: string, version: string): DriftReport {
    const reference = this.#reference(model, version);
    const t = this.#d.thresholds;
    const devices: DeviceDriftScore[] = [];
    const pooled: DriftSummary[] = [];
    for (const s of this.#state.values()) {
      if (s.model !== model || s.version !== version) continue;
      const recent = this.#recent(s);
      pooled.push(...recent);
      devices.push({ deviceId: s.deviceId, ...this.#score(reference, recent), updatedAt: s.updatedAt });
    }
    devices.sort((a, b) => (b.psi ?? -1) - (a.psi ?? -1) || a.deviceId.localeCompare(b.deviceId));
    return {
      model,
      version,
      hasReference: reference !== undefined,
      warn: t.warn,
      threshold: t.threshold,
      minRows: t.minRows,
      fleet: pooled.length > 0 ? this.#score(reference, pooled) : null,
      devices,
    };
  }

  /** Scores what arrived since the last call (runs on its own right after each ingest batch). */
  judge(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    const versions = new Set<string>();
    for (const key of this.#dirty) {
      const s = this.#state.get(key);
      if (!s) continue;
      versions.add(`${s.model}\u0000${s.version}`);
      try {
        this.#judgeDevice(s);
      } catch (err) {
        this.#d.logger.error({ err, deviceId: s.deviceId, model: s.model, version: s.version }, 'drift not judged');
      }
    }
    this.#dirty.clear();
    for (const mv of versions) {
      const [model, version] = mv.split('\u0000') as [string, string];
      const report = this.report(model, version);
      this.#d.gauges.setPsi(model, version, 'fleet', report.fleet?.level === 'insufficient' ? null : (report.fleet?.psi ?? null));
      const worst = report.devices.find((d) => d.level !== 'insufficient');
      this.#d.gauges.setPsi(model, version, 'worst-device', worst?.psi ?? null);
    }
  }

  /** Stops scheduled scoring. Safe to call twice. */
  close(): void {
    this.#closed = true;
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }

  #scheduleJudge(): void {
    if (this.#immediate || this.#closed) return;
    // After the ingest transaction commits: the triggering summary is in the log by then.
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      if (!this.#closed) this.judge();
    });
  }

  #add(deviceId: string, eventId: string, data: DriftSummaryData, at: number): DeviceVersion {
    const key = keyOf(deviceId, data.model, data.version);
    let s = this.#state.get(key);
    if (!s) {
      s = { deviceId, model: data.model, version: data.version, windows: [], updatedAt: at, raised: false };
      this.#state.set(key, s);
    }
    // A resent event (its acknowledgement was lost) must not count twice.
    if (!s.windows.some((w) => w.eventId === eventId)) {
      s.windows.push({ eventId, summary: data.summary });
      if (s.windows.length > this.#maxWindows) s.windows.splice(0, s.windows.length - this.#maxWindows);
    }
    s.updatedAt = Math.max(s.updatedAt, at);
    this.#dirty.add(key);
    return s;
  }

  /** The newest windows, enough of them to reach minRows when the device has sent that many. */
  #recent(s: DeviceVersion): DriftSummary[] {
    const out: DriftSummary[] = [];
    let rows = 0;
    for (let i = s.windows.length - 1; i >= 0 && rows < this.#d.thresholds.minRows; i--) {
      const w = s.windows[i] as Window;
      out.push(w.summary);
      rows += w.summary.rows;
    }
    return out;
  }

  #score(reference: DriftSummary | undefined, parts: readonly DriftSummary[]): DriftScore {
    const merged = mergeSummaries(parts);
    const rows = merged?.rows ?? 0;
    if (!reference || !merged) return { rows, input: null, confidence: null, classes: null, psi: null, level: 'insufficient' };
    return scoreSummary(reference, merged, this.#d.thresholds);
  }

  /** Raises `drift.detected` when a device crosses the threshold, `drift.cleared` when it is back under it. */
  #judgeDevice(s: DeviceVersion): void {
    const reference = this.#reference(s.model, s.version);
    if (!reference) return;
    const score = this.#score(reference, this.#recent(s));
    if (score.level === 'insufficient') return;
    const drifting = score.level === 'drift';
    if (drifting === s.raised) return;
    s.raised = drifting;
    const kind = drifting ? DRIFT_DETECTED_EVENT : DRIFT_CLEARED_EVENT;
    const newest = s.windows[s.windows.length - 1] as Window;
    const data = { model: s.model, version: s.version, threshold: this.#d.thresholds.threshold, ...score, summaryEventId: newest.eventId };
    const now = this.#d.now();
    // Same sequence number as the summary that caused it, so it sorts right after it in the device's log.
    const seq = (this.#seqOf.get(s.deviceId, newest.eventId) as number | undefined) ?? 0;
    try {
      this.#insert.run(s.deviceId, `drift-${randomUUID()}`, seq, kind, JSON.stringify(data), now, now);
    } catch (err) {
      // The device was deleted meanwhile (foreign key): nothing to record against.
      this.#d.logger.warn({ err, deviceId: s.deviceId }, 'drift event not stored');
      return;
    }
    this.#d.gauges.countEvent(s.model, s.version, drifting ? 'detected' : 'cleared');
    this.#d.logger.warn({ deviceId: s.deviceId, model: s.model, version: s.version, psi: score.psi, level: score.level }, drifting ? 'drift detected' : 'drift cleared');
  }

  #reference(model: string, version: string): DriftSummary | undefined {
    const key = `${model}\u0000${version}`;
    if (this.#references.has(key)) return this.#references.get(key);
    const ref = this.#d.reference(model, version);
    // Only a found reference is kept: published versions never change, and a version registered
    // later (or a draft gaining one) is looked up again.
    if (ref) this.#references.set(key, ref);
    return ref;
  }

  /** Rebuilds windows and raised flags from the newest drift events in the log. */
  #reload(): void {
    const rows = this.#d.db
      .prepare(`SELECT device_id AS deviceId, id, kind, data, received_at AS at FROM device_events WHERE kind IN (?, ?, ?) ORDER BY rowid DESC LIMIT 20000`)
      .all(DRIFT_SUMMARY_EVENT, DRIFT_DETECTED_EVENT, DRIFT_CLEARED_EVENT) as Array<{ deviceId: string; id: string; kind: string; data: string; at: number }>;
    for (const r of rows.reverse()) {
      let data: unknown;
      try {
        data = JSON.parse(r.data);
      } catch {
        continue;
      }
      if (r.kind === DRIFT_SUMMARY_EVENT) {
        if (checkSummary.Check(data)) this.#add(r.deviceId, r.id, data, r.at);
        continue;
      }
      const d = data as { model?: unknown; version?: unknown };
      if (typeof d.model !== 'string' || typeof d.version !== 'string') continue;
      const s = this.#state.get(keyOf(r.deviceId, d.model, d.version));
      if (s) s.raised = r.kind === DRIFT_DETECTED_EVENT;
    }
    // Loaded windows were judged when they arrived; nothing to raise again.
    this.#dirty.clear();
  }
}
