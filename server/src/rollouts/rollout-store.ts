import type { RolloutDeviceState, RolloutStateName } from '@flotilla/protocol';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/open.ts';
import type { NormalizedSpec } from './spec.ts';
import type { HealthBaseline } from './health-gate.ts';

export const ACTIVE_STATES: readonly RolloutStateName[] = ['running', 'awaitingApproval', 'paused'];
export const ACTIVE_SQL = `('running', 'awaitingApproval', 'paused')`;
/** Device states that end a device's part in a rollout (for abort rules and thresholds). */
export const OUTCOME_STATES: readonly RolloutDeviceState[] = ['succeeded', 'failed', 'rejected', 'timedOut'];

export interface RolloutRow {
  id: string;
  name: string | null;
  model: string;
  version: string;
  spec: string;
  state: RolloutStateName;
  stage: number;
  stage_started_at: number | null;
  priority: number;
  reason: string | null;
  outcomes_since: number;
  last_join_scan_at: number | null;
  created_by: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface RolloutDeviceRow {
  rollout_id: string;
  device_id: string;
  rank: string;
  stage: number;
  state: RolloutDeviceState;
  attempts: number;
  from_version: string | null;
  generation: number | null;
  variant: string | null;
  activate_after: number | null;
  notified_at: number | null;
  healthy_since: number | null;
  succeed_at: number | null;
  deadline_at: number | null;
  finished_at: number | null;
  error: string | null;
  joined_at: number;
}

export interface StageStateCount {
  stage: number;
  state: RolloutDeviceState;
  n: number;
  baking: number;
}

/**
 * SQL for the rollout tables. Every query a tick runs per rollout is an index range scan
 * (rollout id, state, ...), so a tick's cost follows the devices that change, not the fleet size.
 */
export class RolloutStore {
  readonly db: Db;
  readonly #spec = new Map<string, NormalizedSpec>();
  /** Statements built from column lists, prepared once per distinct list. */
  readonly #dynamic = new Map<string, Statement>();
  readonly #s;

  constructor(db: Db) {
    this.db = db;
    this.#s = {
      get: db.prepare('SELECT * FROM rollouts WHERE id = ?'),
      active: db.prepare(`SELECT * FROM rollouts WHERE state IN ${ACTIVE_SQL} ORDER BY priority DESC, created_at, id`),
      insert: db.prepare(
        `INSERT INTO rollouts (id, name, model, version, spec, state, stage, stage_started_at, priority, outcomes_since, last_join_scan_at, created_by, created_at, updated_at)
         VALUES (@id, @name, @model, @version, @spec, 'running', 0, @now, @priority, @now, @now, @createdBy, @now, @now)`,
      ),
      insertDevice: db.prepare(
        `INSERT INTO rollout_devices (rollout_id, device_id, rank, stage, state, joined_at, error) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      counts: db.prepare(
        `SELECT stage, state, COUNT(*) AS n, SUM(CASE WHEN state = 'notified' AND succeed_at IS NOT NULL THEN 1 ELSE 0 END) AS baking
         FROM rollout_devices WHERE rollout_id = ? GROUP BY stage, state`,
      ),
      outcomesSince: db.prepare(
        `SELECT state, COUNT(*) AS n FROM rollout_devices
         WHERE rollout_id = ? AND state IN ('succeeded', 'failed', 'rejected', 'timedOut') AND finished_at >= ? GROUP BY state`,
      ),
      pending: db.prepare(`SELECT * FROM rollout_devices WHERE rollout_id = ? AND state = 'pending' AND stage BETWEEN 0 AND ? ORDER BY stage, rank LIMIT ?`),
      sentSince: db.prepare('SELECT COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ? AND notified_at >= ?'),
      baked: db.prepare(
        `UPDATE rollout_devices SET state = 'succeeded', finished_at = succeed_at
         WHERE rollout_id = ? AND state = 'notified' AND succeed_at IS NOT NULL AND succeed_at <= ? RETURNING device_id, stage`,
      ),
      overdue: db.prepare(
        `SELECT * FROM rollout_devices WHERE rollout_id = ? AND state = 'notified' AND succeed_at IS NULL AND deadline_at <= ?`,
      ),
      notifiedForDevice: db.prepare(
        `SELECT rd.*, r.model AS r_model, r.version AS r_version FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
         WHERE rd.device_id = ? AND rd.state = 'notified' AND r.state IN ${ACTIVE_SQL}`,
      ),
      notifiedInActive: db.prepare(
        `SELECT rd.*, r.model AS r_model, r.version AS r_version, d.reported AS d_reported FROM rollout_devices rd
         JOIN rollouts r ON r.id = rd.rollout_id JOIN devices d ON d.id = rd.device_id
         WHERE rd.state = 'notified' AND r.state IN ${ACTIVE_SQL} AND d.reported IS NOT NULL`,
      ),
      event: db.prepare('INSERT INTO rollout_events (rollout_id, ts, stage, kind, device_id, details) VALUES (?, ?, ?, ?, ?, ?)'),
      // The old version's health: latest recent reports of the rollout's devices serving another version.
      baseline: db.prepare(
        `SELECT COUNT(*) AS devices, SUM(req) AS requests, SUM(err) AS errors,
                SUM(CASE WHEN p50 IS NOT NULL THEN p50 * req END) AS p50w, SUM(CASE WHEN p50 IS NOT NULL THEN req END) AS p50n,
                SUM(CASE WHEN p95 IS NOT NULL THEN p95 * req END) AS p95w, SUM(CASE WHEN p95 IS NOT NULL THEN req END) AS p95n
         FROM (SELECT json_extract(d.reported, @path || '.health.requests') AS req, json_extract(d.reported, @path || '.health.errors') AS err,
                      json_extract(d.reported, @path || '.health.p50Ms') AS p50, json_extract(d.reported, @path || '.health.p95Ms') AS p95
               FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id
               WHERE rd.rollout_id = @rid AND d.reported_at >= @since
                 AND json_extract(d.reported, @path || '.version') <> @version
                 AND json_extract(d.reported, @path || '.state') IN ('activated', 'healthy'))
         WHERE req > 0`,
      ),
      holders: db.prepare(
        `SELECT rd.rollout_id, rd.device_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
         WHERE r.model = ? AND r.state IN ${ACTIVE_SQL} AND rd.stage >= 0`,
      ),
    };
  }

  get(id: string): RolloutRow | null {
    return (this.#s.get.get(id) as RolloutRow | undefined) ?? null;
  }

  active(): RolloutRow[] {
    return this.#s.active.all() as RolloutRow[];
  }

  specOf(row: RolloutRow): NormalizedSpec {
    let spec = this.#spec.get(row.id);
    if (!spec) {
      spec = JSON.parse(row.spec) as NormalizedSpec;
      this.#spec.set(row.id, spec);
    }
    return spec;
  }

  insert(r: { id: string; name: string | null; model: string; version: string; spec: NormalizedSpec; priority: number; createdBy: string; now: number }): void {
    this.#s.insert.run({ id: r.id, name: r.name, model: r.model, version: r.version, spec: JSON.stringify(r.spec), priority: r.priority, createdBy: r.createdBy, now: r.now });
  }

  insertDevice(rolloutId: string, deviceId: string, rank: string, stage: number, state: RolloutDeviceState, now: number, error: string | null = null): void {
    this.#s.insertDevice.run(rolloutId, deviceId, rank, stage, state, now, error);
  }

  /** Updates named columns of a rollout (and updated_at). Column names come from this module's callers, never from input. */
  update(id: string, now: number, fields: Partial<Pick<RolloutRow, 'state' | 'stage' | 'stage_started_at' | 'reason' | 'outcomes_since' | 'last_join_scan_at' | 'finished_at'>>): void {
    const cols = Object.keys(fields);
    const sql = `UPDATE rollouts SET ${cols.map((c) => `${c} = @${c}`).join(', ')}${cols.length ? ', ' : ''}updated_at = @now WHERE id = @id`;
    this.#prepared(sql).run({ ...fields, now, id });
  }

  updateDevice(rolloutId: string, deviceId: string, fields: Partial<Omit<RolloutDeviceRow, 'rollout_id' | 'device_id' | 'rank' | 'joined_at'>>): void {
    const cols = Object.keys(fields);
    if (cols.length === 0) return;
    this.#prepared(`UPDATE rollout_devices SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE rollout_id = @rid AND device_id = @did`).run({ ...fields, rid: rolloutId, did: deviceId });
  }

  #prepared(sql: string): Statement {
    let st = this.#dynamic.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.#dynamic.set(sql, st);
    }
    return st;
  }

  counts(rolloutId: string): StageStateCount[] {
    return this.#s.counts.all(rolloutId) as StageStateCount[];
  }

  outcomesSince(rolloutId: string, since: number): Record<string, number> {
    const out: Record<string, number> = { succeeded: 0, failed: 0, rejected: 0, timedOut: 0 };
    for (const r of this.#s.outcomesSince.all(rolloutId, since) as Array<{ state: string; n: number }>) out[r.state] = r.n;
    return out;
  }

  pending(rolloutId: string, maxStage: number, limit: number): RolloutDeviceRow[] {
    return this.#s.pending.all(rolloutId, maxStage, limit) as RolloutDeviceRow[];
  }

  sentSince(rolloutId: string, since: number): number {
    return (this.#s.sentSince.get(rolloutId, since) as { n: number }).n;
  }

  promoteBaked(rolloutId: string, now: number): Array<{ device_id: string; stage: number }> {
    return this.#s.baked.all(rolloutId, now) as Array<{ device_id: string; stage: number }>;
  }

  overdue(rolloutId: string, now: number): RolloutDeviceRow[] {
    return this.#s.overdue.all(rolloutId, now) as RolloutDeviceRow[];
  }

  notifiedForDevice(deviceId: string): Array<RolloutDeviceRow & { r_model: string; r_version: string }> {
    return this.#s.notifiedForDevice.all(deviceId) as Array<RolloutDeviceRow & { r_model: string; r_version: string }>;
  }

  notifiedWithReports(): Array<RolloutDeviceRow & { r_model: string; r_version: string; d_reported: string }> {
    return this.#s.notifiedInActive.all() as Array<RolloutDeviceRow & { r_model: string; r_version: string; d_reported: string }>;
  }

  /** Aggregated health of the rollout's devices reported (since `since`) on a version other than `newVersion`; null when none. */
  baseline(rolloutId: string, model: string, newVersion: string, since: number): HealthBaseline | null {
    const r = this.#s.baseline.get({ rid: rolloutId, path: `$.models."${model}"`, version: newVersion, since }) as {
      devices: number;
      requests: number | null;
      errors: number | null;
      p50w: number | null;
      p50n: number | null;
      p95w: number | null;
      p95n: number | null;
    };
    if (!r.devices || !r.requests) return null;
    return {
      devices: r.devices,
      requests: r.requests,
      errorRate: (r.errors ?? 0) / r.requests,
      p50Ms: r.p50n ? r.p50w! / r.p50n : null,
      p95Ms: r.p95n ? r.p95w! / r.p95n : null,
    };
  }

  /** Device ids held by active rollouts of a model, by rollout. */
  holders(model: string): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const r of this.#s.holders.iterate(model) as Iterable<{ rollout_id: string; device_id: string }>) {
      let set = out.get(r.rollout_id);
      if (!set) out.set(r.rollout_id, (set = new Set()));
      set.add(r.device_id);
    }
    return out;
  }

  event(rolloutId: string, now: number, stage: number | null, kind: string, deviceId: string | null = null, details: Record<string, unknown> = {}): void {
    this.#s.event.run(rolloutId, now, stage, kind, deviceId, JSON.stringify(details));
  }
}
