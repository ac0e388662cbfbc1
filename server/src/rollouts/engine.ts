import { randomBytes } from 'node:crypto';
import { FlotillaError, type DesiredState, type ReportedState, type RolloutDeviceState, type RolloutStateName } from '@flotilla/protocol';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { DeviceStore } from '../fleet/device-store.ts';
import { normalizeSpec, type NormalizedSpec } from './spec.ts';
import { cohortOrder, cohortRank, cumulativeSizes, requiredSuccesses, stageOfPosition } from './cohorts.ts';
import { currentRatePerMin, notificationBudget } from './rate-ramp.ts';
import { classifyReport } from './outcome.ts';
import { MaintenanceWindowSchedule } from './cron-window.ts';
import { matchTargets, newcomers } from './targets.ts';
import { withStageAb, withStageShadow, writeDesiredModel, type DesiredModelEntry, type DesiredPublisher } from './desired-writer.ts';
import { noVariantResolver, type RolloutVariantResolver } from './variant-resolver.ts';
import { assertReleasable, type ReleaseCatalog } from './release-check.ts';
import { createRolloutMetrics, type RolloutMetrics } from './rollout-metrics.ts';
import { ACTIVE_STATES, RolloutStore, type RolloutDeviceRow, type RolloutRow, type StageStateCount } from './rollout-store.ts';
import { estimateRollout, type RolloutEstimate } from './estimate.ts';
import { judgeAb, judgeAgainstBaseline, type HealthBaseline } from './health-gate.ts';
import { compareArms } from '../ab/ab-comparison.ts';
import { readAbReports } from '../ab/ab-reports.ts';

export interface RolloutEngineDeps {
  db: Db;
  devices: DeviceStore;
  /** Sends committed desired states (FleetAdmin). */
  publisher: DesiredPublisher;
  audit: AuditLog;
  now: () => number;
  resolver?: RolloutVariantResolver;
  /** Which versions the registry holds; when absent, any version is accepted (engine tests without a registry). */
  releases?: ReleaseCatalog;
  /** prom-client registry for the rollout metrics; a private one when absent. */
  registry?: Registry;
  logger?: Pick<Logger, 'warn' | 'error' | 'info'>;
  newId?: () => string;
  /** Most devices notified per rollout in one tick, so one tick stays short whatever the rate. */
  maxNotifyPerTick?: number;
  /** How often a continuous rollout looks for newly matching devices (besides onDeviceChanged). */
  joinScanIntervalMs?: number;
}

export interface StageFunnel {
  stage: number;
  size: number;
  required: number;
  counts: Record<RolloutDeviceState, number>;
  baking: number;
  reached: { notified: number; healthy: number; succeeded: number };
  /** Notified devices by the OTA step they report for the new version (`waiting` before any). */
  inFlight: Record<string, number>;
  /** Ended badly (failed, rejected, timed out), by reason code. */
  failedBy: Record<string, number>;
}

const IN_FLIGHT_STEPS = ['downloading', 'verified', 'installed', 'activated', 'healthy'] as const;

export interface RolloutSummary {
  id: string;
  name: string | null;
  model: string;
  version: string;
  state: RolloutStateName;
  stage: number;
  stageStartedAt: number | null;
  reason: string | null;
  priority: number;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  targetCount: number;
  counts: Record<RolloutDeviceState, number>;
  funnel?: StageFunnel[];
  spec: NormalizedSpec;
}

export interface DryRun {
  id: string;
  targetCount: number;
  stages: Array<{
    stage: number;
    size: number;
    cumulative: number;
    required: number;
    bakeTimeSec: number;
    requireApproval: boolean;
    devices: Array<{ deviceId: string; variant: string | null; note?: string }>;
    truncated: boolean;
  }>;
  conflicts: Array<{ rolloutId: string; priority: number; overlap: number; action: 'refuse' | 'preempt' }>;
  estimate: RolloutEstimate;
}

export interface TickResult {
  notified: number;
  changed: number;
}

const DRY_RUN_DEVICES_PER_STAGE = 500;
const EMPTY_COUNTS = (): Record<RolloutDeviceState, number> => ({ pending: 0, notified: 0, succeeded: 0, failed: 0, rejected: 0, timedOut: 0, reverted: 0, skipped: 0 });
const ABORT_PREFIX = 'aborted: ';
const AB_JUDGE_INTERVAL_MS = 1000;

/**
 * The staged-rollout state machine. Everything it knows lives in SQLite (rollouts, rollout_devices,
 * rollout_events); the object holds only caches and a queue of desired states to publish. Each
 * transition commits in one transaction together with the desired-state writes it implies, and the
 * MQTT publish follows the commit (desired is retained and re-sent on every reconnect, so a crash
 * between commit and publish loses nothing). Time comes only from the injected clock, and work
 * happens only in `tick()` and the report hook: no timers per device.
 */
export class RolloutEngine {
  readonly store: RolloutStore;
  readonly metrics: RolloutMetrics;
  readonly #d: RolloutEngineDeps;
  readonly #resolver: RolloutVariantResolver;
  readonly #windows = new Map<string, MaintenanceWindowSchedule>();
  readonly #outbox: Array<{ deviceId: string; desired: DesiredState }> = [];
  readonly #inflight = new Set<Promise<void>>();
  /** Reports waiting for the next tick, latest per device, with the time each arrived. */
  readonly #reports = new Map<string, { reported: ReportedState; at: number }>();
  /** Old-version baselines of health-gated rollouts, computed at most once per batch of reports. */
  readonly #baselines = new Map<string, HealthBaseline | null>();
  /** `rolloutId/stage` of A/B gates that passed (the `ab.passed` event is the durable record). */
  readonly #abPassed = new Set<string>();
  /** When each rollout's A/B gate last read its devices' reports (engine clock). */
  readonly #abJudgedAt = new Map<string, number>();
  #reconciled = false;
  #joinScanDue = false;
  #closed = false;
  /** Called when something happened that the next tick should act on soon (the scheduler sets it). */
  onWork: (() => void) | null = null;
  readonly #changeListeners = new Set<(ids: ReadonlySet<string>) => void>();

  constructor(deps: RolloutEngineDeps) {
    this.#d = deps;
    this.store = new RolloutStore(deps.db);
    this.#resolver = deps.resolver ?? noVariantResolver;
    this.metrics = createRolloutMetrics(deps.registry ?? new Registry(), deps.db);
  }

  // ---------------------------------------------------------------- commands

  create(actor: AuditActor, input: unknown): RolloutSummary {
    const now = this.#d.now();
    const spec = normalizeSpec(input, now);
    assertReleasable(this.#d.releases, spec.model, spec.version);
    const id = (input as { id?: string }).id ?? this.#newId();
    const touched = [id];
    this.#tx(() => {
      if (this.store.get(id)) throw new FlotillaError('FLT_CONFLICT', `rollout ${id} already exists`);
      const targets = matchTargets(this.#d.db, spec.target);
      if (targets.length === 0 && !spec.continuous) throw new FlotillaError('FLT_ROLLOUT_NO_TARGETS', 'the target matches no accepted device', { target: spec.target });
      for (const c of this.#conflicts(spec, targets)) {
        if (c.action === 'refuse') {
          throw new FlotillaError('FLT_ROLLOUT_CONFLICT', `rollout ${c.rolloutId} (priority ${c.priority}) already covers ${c.overlap} of these devices for ${spec.model}`, c);
        }
        this.store.update(c.rolloutId, now, { state: 'preempted', reason: `preempted by ${id}`, finished_at: now });
        this.store.event(c.rolloutId, now, null, 'preempted', null, { by: id });
        this.#d.audit.record(actor, 'rollout.preempt', c.rolloutId, { by: id });
        touched.push(c.rolloutId);
      }
      this.store.insert({ id, name: spec.name, model: spec.model, version: spec.version, spec, priority: spec.priority, createdBy: actor.name, now });
      const ordered = cohortOrder(id, targets);
      const cumulative = cumulativeSizes(spec.stages, ordered.length);
      ordered.forEach((d, position) => {
        const stage = stageOfPosition(cumulative, position);
        // Devices past the last stage stay out of the rollout; they are recorded so continuous mode does not take them for newcomers.
        this.store.insertDevice(id, d.deviceId, d.rank, stage, stage < 0 ? 'skipped' : 'pending', now, stage < 0 ? 'outside the last stage' : null);
      });
      this.store.event(id, now, null, 'created', null, { targetCount: targets.length, cumulative });
      this.store.event(id, now, 0, 'stage.started');
      this.#d.audit.record(actor, 'rollout.create', id, { model: spec.model, version: spec.version, targetCount: targets.length });
    });
    this.#changed(touched);
    this.#wake();
    return this.get(id);
  }

  dryRun(input: unknown): DryRun {
    const now = this.#d.now();
    const spec = normalizeSpec(input, now);
    // A plan of a version no agent could install would preview a rollout that create refuses.
    assertReleasable(this.#d.releases, spec.model, spec.version);
    const id = (input as { id?: string }).id ?? this.#newId();
    const targets = matchTargets(this.#d.db, spec.target);
    const ordered = cohortOrder(id, targets);
    const cumulative = cumulativeSizes(spec.stages, ordered.length);
    const stages: DryRun['stages'] = spec.stages.map((s, i) => {
      const from = i === 0 ? 0 : cumulative[i - 1]!;
      const size = cumulative[i]! - from;
      const members = ordered.slice(from, from + Math.min(size, DRY_RUN_DEVICES_PER_STAGE)).map((d) => {
        try {
          return { deviceId: d.deviceId, variant: this.#resolver.resolve(spec.model, spec.version, d.deviceId)?.variant ?? null };
        } catch (err) {
          return { deviceId: d.deviceId, variant: null, note: err instanceof FlotillaError ? err.code : 'variant resolution failed' };
        }
      });
      return {
        stage: i,
        size,
        cumulative: cumulative[i]!,
        required: requiredSuccesses(size, s.successThreshold),
        bakeTimeSec: s.bakeTimeSec,
        requireApproval: s.requireApproval,
        devices: members,
        truncated: size > members.length,
      };
    });
    const sizes = stages.map((s) => s.size);
    return { id, targetCount: targets.length, stages, conflicts: this.#conflicts(spec, targets), estimate: estimateRollout(spec, sizes, now) };
  }

  pause(actor: AuditActor, id: string, reason?: string): RolloutSummary {
    return this.#command(actor, id, 'pause', ['running', 'awaitingApproval'], (r, now) => {
      this.store.update(r.id, now, { state: 'paused', reason: reason ?? 'paused by an operator' });
    }, { reason });
  }

  resume(actor: AuditActor, id: string): RolloutSummary {
    return this.#command(actor, id, 'resume', ['paused'], (r, now) => {
      // After an abort, the outcomes that caused it are not counted again: abort rules start afresh.
      // (+1: outcomes stamped in this very millisecond came before the resume.)
      const fields = r.reason?.startsWith(ABORT_PREFIX) ? { outcomes_since: now + 1 } : {};
      this.store.update(r.id, now, { state: 'running', reason: null, ...fields });
    });
  }

  approve(actor: AuditActor, id: string): RolloutSummary {
    return this.#command(actor, id, 'approve', ['awaitingApproval'], (r, now) => {
      this.store.update(r.id, now, { state: 'running', stage: r.stage + 1, stage_started_at: now, reason: null });
      this.store.event(r.id, now, r.stage + 1, 'stage.started', null, { approvedBy: actor.name });
    });
  }

  cancel(actor: AuditActor, id: string, reason?: string): RolloutSummary {
    return this.#command(actor, id, 'cancel', ACTIVE_STATES, (r, now) => {
      this.store.update(r.id, now, { state: 'cancelled', reason: reason ?? 'cancelled by an operator', finished_at: now });
    }, { reason });
  }

  /** Gives every device the rollout moved its previous desired version back. Allowed until the rollout is reverted or pre-empted. */
  revert(actor: AuditActor, id: string, reason?: string): RolloutSummary {
    return this.#command(actor, id, 'revert', ['running', 'awaitingApproval', 'paused', 'completed', 'cancelled'], (r, now) => {
      this.#revertDevices(r, now);
      this.store.update(r.id, now, { state: 'reverted', reason: reason ?? 'reverted by an operator', finished_at: now });
    }, { reason });
  }

  // ---------------------------------------------------------------- reads

  get(id: string, opts: { funnel?: boolean } = { funnel: true }): RolloutSummary {
    const r = this.store.get(id);
    if (!r) throw new FlotillaError('FLT_ROLLOUT_NOT_FOUND', `no rollout ${id}`);
    return this.#summary(r, opts.funnel ?? true);
  }

  list(f: { state?: RolloutStateName; model?: string; before?: { createdAt: number; id: string }; limit: number }): RolloutSummary[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.state) {
      where.push('state = ?');
      args.push(f.state);
    }
    if (f.model) {
      where.push('model = ?');
      args.push(f.model);
    }
    if (f.before) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(f.before.createdAt, f.before.createdAt, f.before.id);
    }
    const rows = this.#d.db
      .prepare(`SELECT * FROM rollouts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...args, f.limit) as RolloutRow[];
    return rows.map((r) => this.#summary(r, false));
  }

  devicesOf(id: string, f: { state?: RolloutDeviceState; stage?: number; after?: string; limit: number }): RolloutDeviceRow[] {
    this.get(id, { funnel: false });
    const where = ['rollout_id = ?'];
    const args: unknown[] = [id];
    if (f.state) {
      where.push('state = ?');
      args.push(f.state);
    }
    if (f.stage !== undefined) {
      where.push('stage = ?');
      args.push(f.stage);
    }
    if (f.after) {
      where.push('device_id > ?');
      args.push(f.after);
    }
    return this.#d.db.prepare(`SELECT * FROM rollout_devices WHERE ${where.join(' AND ')} ORDER BY device_id LIMIT ?`).all(...args, f.limit) as RolloutDeviceRow[];
  }

  events(id: string, f: { afterId?: number; limit: number; devices?: boolean }): Array<{ id: number; ts: number; stage: number | null; kind: string; deviceId: string | null; details: unknown }> {
    this.get(id, { funnel: false });
    const rows = this.#d.db
      .prepare(
        `SELECT id, ts, stage, kind, device_id AS deviceId, details FROM rollout_events
         WHERE rollout_id = ? AND id > ? ${f.devices ? '' : 'AND device_id IS NULL'} ORDER BY id LIMIT ?`,
      )
      .all(id, f.afterId ?? 0, f.limit) as Array<{ id: number; ts: number; stage: number | null; kind: string; deviceId: string | null; details: string }>;
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as unknown }));
  }

  // ---------------------------------------------------------------- hooks

  /**
   * Device ingest calls this after it stored a device's reported state. The report is queued with its
   * arrival time and applied at the next tick (the scheduler runs one at once), so a burst of reports
   * commits in one transaction. Losing the queue in a crash loses nothing: the reports are stored on
   * the devices and a new engine applies them on its first tick.
   */
  onDeviceReported(deviceId: string, reported: ReportedState): void {
    if (this.#closed) return;
    this.#reports.set(deviceId, { reported, at: this.#d.now() });
    this.#wake();
  }

  /** Call when a device was accepted or its labels changed: continuous rollouts look for newcomers on the next tick. */
  onDeviceChanged(_deviceId: string): void {
    this.#joinScanDue = true;
    this.#wake();
  }

  /**
   * Calls `listener` after each committed command and after each tick with the ids of the rollouts
   * it may have changed (every active one a tick stepped), so live views re-read only those; a
   * listener compares what it last showed. Returns the unsubscribe function.
   */
  onChange(listener: (ids: ReadonlySet<string>) => void): () => void {
    this.#changeListeners.add(listener);
    return () => {
      this.#changeListeners.delete(listener);
    };
  }

  #changed(ids: readonly string[]): void {
    if (ids.length === 0 || this.#changeListeners.size === 0) return;
    const set = new Set(ids);
    for (const listener of [...this.#changeListeners]) {
      try {
        listener(set);
      } catch (err) {
        // A broken viewer must not stop the engine.
        this.#d.logger?.warn({ err }, 'rollout change listener failed');
      }
    }
  }

  // ---------------------------------------------------------------- tick

  /** Advances every active rollout as far as the clock allows. Synchronous; publishes follow the commits. */
  tick(): TickResult {
    if (this.#closed) return { notified: 0, changed: 0 };
    const end = this.metrics.tick.startTimer();
    const result: TickResult = { notified: 0, changed: 0 };
    if (!this.#reconciled) {
      this.#reconcile();
      this.#reconciled = true;
    }
    result.changed += this.#drainReports();
    const scanJoins = this.#joinScanDue;
    this.#joinScanDue = false;
    const stepped: string[] = [];
    for (const r of this.store.active()) {
      stepped.push(r.id);
      try {
        this.#tx(() => this.#step(r, this.#d.now(), scanJoins, result));
      } catch (err) {
        // One broken rollout must not stop the others; its transaction rolled back whole.
        this.#d.logger?.error({ err, rollout: r.id }, 'rollout step failed');
      }
    }
    this.#flush();
    this.#changed(stepped);
    end();
    return result;
  }

  /** Resolves when every publish queued so far has been handed to the broker. */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.settled();
  }

  // ---------------------------------------------------------------- internals

  #drainReports(): number {
    if (this.#reports.size === 0) return 0;
    const batch = [...this.#reports];
    this.#reports.clear();
    this.#baselines.clear();
    let changed = 0;
    this.#tx(() => {
      for (const [deviceId, { reported, at }] of batch) {
        for (const row of this.store.notifiedForDevice(deviceId)) changed += this.#applyReport(row, row.r_model, row.r_version, reported, at);
      }
    });
    return changed;
  }

  #step(r: RolloutRow, now: number, scanJoins: boolean, result: TickResult): void {
    const spec = this.store.specOf(r);
    result.changed += this.#settleDevices(r, spec, now);
    if (r.state === 'paused') return;
    if (spec.continuous && (scanJoins || now - (r.last_join_scan_at ?? 0) >= (this.#d.joinScanIntervalMs ?? 5000))) this.#joinNewcomers(r, spec, now);
    if (this.#checkAbort(r, spec, now)) return;
    if (r.state === 'running' && this.#abGate(r, spec, now)) return;
    const counts = this.store.counts(r.id);
    if (r.state === 'running' && this.#advance(r, spec, counts, now)) return;
    result.notified += this.#notifyBatch(r, spec, counts, now);
  }

  /** Bake times that ended become successes; notified devices past their deadline time out (or retry). */
  #settleDevices(r: RolloutRow, spec: NormalizedSpec, now: number): number {
    let changed = 0;
    for (const d of this.store.promoteBaked(r.id, now)) {
      this.store.event(r.id, now, d.stage, 'device.succeeded', d.device_id);
      this.metrics.outcomes.inc({ outcome: 'succeeded' });
      changed++;
    }
    for (const d of this.store.overdue(r.id, now)) {
      this.#finishOrRetry(r, spec, d, 'timedOut', 'FLT_ROLLOUT_DEVICE_TIMEOUT', now);
      changed++;
    }
    return changed;
  }

  #applyReport(row: RolloutDeviceRow, model: string, version: string, reported: ReportedState, now: number): number {
    const r = this.store.get(row.rollout_id)!;
    const spec = this.store.specOf(r);
    const outcome = classifyReport(reported, model, version, row.generation ?? 0);
    switch (outcome.kind) {
      case 'ignore':
        return 0;
      case 'progress':
        if (row.healthy_since === null) return 0;
        // Healthy no more before the bake ended: the bake starts again at the next healthy report.
        this.store.updateDevice(r.id, row.device_id, { healthy_since: null, succeed_at: null });
        return 1;
      case 'healthy': {
        if (spec.healthGate && this.#healthRegressed(r, spec, row, model, version, reported, now)) return 1;
        if (row.healthy_since !== null) return 0;
        const bake = spec.stages[row.stage]?.bakeTimeSec ?? 0;
        this.store.updateDevice(r.id, row.device_id, { healthy_since: now, succeed_at: now + bake * 1000 });
        this.store.event(r.id, now, row.stage, 'device.healthy', row.device_id);
        if (bake === 0) {
          this.store.updateDevice(r.id, row.device_id, { state: 'succeeded', finished_at: now });
          this.store.event(r.id, now, row.stage, 'device.succeeded', row.device_id);
          this.metrics.outcomes.inc({ outcome: 'succeeded' });
        }
        return 1;
      }
      case 'failed':
        this.#finishOrRetry(r, spec, row, 'failed', outcome.error ?? 'FLT_ROLLOUT_DEVICE_FAILED', now);
        return 1;
      case 'rejected':
        this.store.updateDevice(r.id, row.device_id, { state: 'rejected', finished_at: now, error: 'FLT_ROLLOUT_DEVICE_REJECTED' });
        this.store.event(r.id, now, row.stage, 'device.rejected', row.device_id, { serving: outcome.version });
        this.metrics.outcomes.inc({ outcome: 'rejected' });
        return 1;
    }
  }

  /**
   * The health gate: a device healthy on the new version whose error rate or latency since activation
   * is worse than the old version's (by the rollout's limits) fails, during its bake or before it.
   * Returns true when it failed the device.
   */
  #healthRegressed(r: RolloutRow, spec: NormalizedSpec, row: RolloutDeviceRow, model: string, version: string, reported: ReportedState, now: number): boolean {
    const limits = spec.healthGate!;
    const health = reported.models[model]?.health;
    if (!health || health.requests < limits.minRequests) return false;
    let baseline = this.#baselines.get(r.id);
    if (baseline === undefined) {
      baseline = this.store.baseline(r.id, model, version, now - limits.baselineWindowSec * 1000);
      this.#baselines.set(r.id, baseline);
    }
    const regression = judgeAgainstBaseline(limits, health, baseline);
    if (!regression) return false;
    this.store.event(r.id, now, row.stage, 'device.healthRegression', row.device_id, { ...regression });
    this.#finishOrRetry(r, spec, row, 'failed', 'FLT_ROLLOUT_HEALTH_REGRESSION', now);
    return true;
  }

  /**
   * The current stage's A/B gate (docs/ota.md, "A/B traffic"): compares the arms pooled over the
   * rollout's devices. A significant regression aborts the rollout (FLT_ROLLOUT_AB_REGRESSION); a
   * pass sends the stage's devices their entry without the split, so they activate the new version
   * and go on to the usual health and bake. Returns true when the rollout left `running`.
   */
  #abGate(r: RolloutRow, spec: NormalizedSpec, now: number): boolean {
    const ab = spec.stages[r.stage]?.ab;
    if (!ab || this.#abGatePassed(r.id, r.stage)) return false;
    // Pooling reads every device's report: once a second is enough for a gate that waits for hundreds of requests.
    if (now - (this.#abJudgedAt.get(r.id) ?? -Infinity) < AB_JUDGE_INTERVAL_MS) return false;
    this.#abJudgedAt.set(r.id, now);
    const comparison = compareArms(spec.model, readAbReports(this.#d.db, spec.model, { rolloutId: r.id }), spec.version);
    const verdict = judgeAb(ab, comparison, r.stage_started_at ?? r.created_at, now);
    if (verdict.kind === 'wait') return false;
    const figures = { control: comparison.arms.control, candidate: comparison.arms.candidate, difference: comparison.difference };
    if (verdict.kind === 'regressed') {
      this.store.event(r.id, now, r.stage, 'ab.regression', null, { reasons: verdict.reasons, ...figures });
      this.#abort(r, spec, now, 'abRegression', `FLT_ROLLOUT_AB_REGRESSION: ${verdict.reasons.join('; ')}`);
      return true;
    }
    this.store.event(r.id, now, r.stage, 'ab.passed', null, figures);
    this.#abPassed.add(`${r.id}/${r.stage}`);
    const rows = this.#d.db
      .prepare(`SELECT * FROM rollout_devices WHERE rollout_id = ? AND stage = ? AND state = 'notified'`)
      .all(r.id, r.stage) as RolloutDeviceRow[];
    for (const d of rows) {
      const device = this.#d.devices.get(d.device_id);
      const current = device?.desired?.models[spec.model] as DesiredModelEntry | undefined;
      if (!device || current?.rollout !== r.id || current.ab === undefined) continue;
      const { ab: _split, ...entry } = current;
      const desired = writeDesiredModel(this.#d.devices, d.device_id, device.desired, spec.model, entry, now);
      // The split may have run long: the device's timeout starts again with its activation.
      this.store.updateDevice(r.id, d.device_id, { generation: desired.generation, deadline_at: now + spec.perDeviceTimeoutSec * 1000 });
      this.#outbox.push({ deviceId: d.device_id, desired });
    }
    return false;
  }

  #abGatePassed(rolloutId: string, stage: number): boolean {
    const key = `${rolloutId}/${stage}`;
    if (this.#abPassed.has(key)) return true;
    const row = this.#d.db.prepare(`SELECT 1 FROM rollout_events WHERE rollout_id = ? AND stage = ? AND kind = 'ab.passed' LIMIT 1`).get(rolloutId, stage);
    if (row) this.#abPassed.add(key);
    return row !== undefined;
  }

  #finishOrRetry(r: RolloutRow, spec: NormalizedSpec, d: RolloutDeviceRow, outcome: 'failed' | 'timedOut', error: string, now: number): void {
    if (d.attempts < spec.retries) {
      // Back in the queue: the next notification sends a new generation, which the agent takes as a fresh attempt.
      this.store.updateDevice(r.id, d.device_id, { state: 'pending', attempts: d.attempts + 1, healthy_since: null, succeed_at: null, error });
      this.store.event(r.id, now, d.stage, 'device.retry', d.device_id, { after: outcome, error, attempt: d.attempts + 1 });
      return;
    }
    this.store.updateDevice(r.id, d.device_id, { state: outcome, finished_at: now, error });
    this.store.event(r.id, now, d.stage, `device.${outcome}`, d.device_id, { error });
    this.metrics.outcomes.inc({ outcome });
  }

  /** Applies the abort rules to outcomes since the rollout started (or was resumed after an abort). */
  #checkAbort(r: RolloutRow, spec: NormalizedSpec, now: number): boolean {
    if (spec.abortRules.length === 0) return false;
    const o = this.store.outcomesSince(r.id, r.outcomes_since);
    const executed = o.succeeded! + o.failed! + o.rejected! + o.timedOut!;
    for (const rule of spec.abortRules) {
      if (executed < rule.minExecuted) continue;
      const bad = rule.failureType === 'any' ? o.failed! + o.rejected! + o.timedOut! : o[rule.failureType]!;
      if ((bad * 100) / executed >= rule.thresholdPercent && bad > 0) {
        this.#abort(r, spec, now, rule.failureType, `${rule.failureType} ${bad} of ${executed} executed (threshold ${rule.thresholdPercent}%)`);
        return true;
      }
    }
    return false;
  }

  #abort(r: RolloutRow, spec: NormalizedSpec, now: number, cause: string, why: string): void {
    const reason = ABORT_PREFIX + why;
    if (spec.onAbort === 'revert') {
      this.#revertDevices(r, now);
      this.store.update(r.id, now, { state: 'reverted', reason, finished_at: now });
    } else {
      this.store.update(r.id, now, { state: 'paused', reason });
    }
    this.store.event(r.id, now, r.stage, 'aborted', null, { cause, why, action: spec.onAbort });
    this.metrics.aborts.inc({ cause, action: spec.onAbort });
    this.#d.logger?.warn({ rollout: r.id, why, action: spec.onAbort }, 'rollout aborted');
  }

  /**
   * Stage logic: once the current stage has its required successes, the next stage starts (or waits
   * for approval); after the last, the rollout completes when no device is still in flight. A stage
   * that can no longer reach its threshold aborts. Returns true when the rollout left `running`.
   */
  #advance(r: RolloutRow, spec: NormalizedSpec, stageCounts: readonly StageStateCount[], now: number): boolean {
    const byStage = new Map<number, Record<RolloutDeviceState, number>>();
    let inFlight = 0;
    for (const c of stageCounts) {
      const counts = byStage.get(c.stage) ?? EMPTY_COUNTS();
      counts[c.state] += c.n;
      byStage.set(c.stage, counts);
      if (c.stage >= 0 && (c.state === 'pending' || c.state === 'notified')) inFlight += c.n;
    }
    let stage = r.stage;
    for (;;) {
      const s = spec.stages[stage]!;
      const c = byStage.get(stage) ?? EMPTY_COUNTS();
      const size = Object.values(c).reduce((a, b) => a + b, 0) - c.skipped;
      const required = requiredSuccesses(size, s.successThreshold);
      if (c.succeeded < required) {
        const lost = c.failed + c.rejected + c.timedOut + c.reverted;
        if (size - lost < required) {
          this.#abort(r, spec, now, 'threshold', `stage ${stage} cannot reach ${required} successes of ${size} (${lost} lost)`);
          return true;
        }
        break;
      }
      if (stage === spec.stages.length - 1) {
        if (!spec.continuous && inFlight === 0) {
          this.store.update(r.id, now, { state: 'completed', finished_at: now, ...(stage !== r.stage ? { stage, stage_started_at: now } : {}) });
          this.store.event(r.id, now, stage, 'stage.completed');
          this.store.event(r.id, now, null, 'completed');
          return true;
        }
        break;
      }
      this.store.event(r.id, now, stage, 'stage.completed');
      if (spec.stages[stage + 1]!.requireApproval) {
        this.store.update(r.id, now, { state: 'awaitingApproval', stage, ...(stage !== r.stage ? { stage_started_at: now } : {}) });
        this.store.event(r.id, now, stage + 1, 'approval.required');
        return true;
      }
      stage++;
      this.store.event(r.id, now, stage, 'stage.started');
    }
    if (stage !== r.stage) {
      this.store.update(r.id, now, { stage, stage_started_at: now });
      r.stage = stage;
    }
    return false;
  }

  /** Notifies pending devices of the stages reached so far, in cohort order, within the rate budget. */
  #notifyBatch(r: RolloutRow, spec: NormalizedSpec, stageCounts: readonly StageStateCount[], now: number): number {
    let budget = this.#d.maxNotifyPerTick ?? 500;
    if (spec.rate) {
      let notified = 0;
      let succeeded = 0;
      for (const c of stageCounts) {
        if (c.state === 'succeeded') succeeded += c.n;
        if (c.state !== 'pending' && c.state !== 'skipped') notified += c.n;
      }
      const rate = currentRatePerMin(spec.rate, { notified, succeeded });
      budget = Math.min(budget, notificationBudget(rate, this.store.sentSince(r.id, now - 59_999), this.store.sentSince(r.id, now - 999)));
    }
    if (budget <= 0) return 0;
    let sent = 0;
    for (const d of this.store.pending(r.id, r.stage, budget)) if (this.#notify(r, spec, d, now)) sent++;
    return sent;
  }

  #notify(r: RolloutRow, spec: NormalizedSpec, d: RolloutDeviceRow, now: number): boolean {
    const device = this.#d.devices.get(d.device_id);
    if (!device || device.status !== 'accepted') {
      this.store.updateDevice(r.id, d.device_id, { state: 'skipped', finished_at: now, error: `device is ${device?.status ?? 'gone'}` });
      this.store.event(r.id, now, d.stage, 'device.skipped', d.device_id, { status: device?.status ?? null });
      return false;
    }
    let variant: string | null = null;
    try {
      variant = this.#resolver.resolve(spec.model, spec.version, d.device_id)?.variant ?? null;
    } catch (err) {
      const code = err instanceof FlotillaError ? err.code : 'FLT_INTERNAL';
      this.store.updateDevice(r.id, d.device_id, { state: 'skipped', finished_at: now, error: code });
      this.store.event(r.id, now, d.stage, 'device.skipped', d.device_id, { error: code });
      return false;
    }
    const entry: DesiredModelEntry = { version: spec.version, rollout: r.id };
    if (variant) entry.variant = variant;
    withStageShadow(entry, spec.stages[d.stage]);
    withStageAb(entry, spec.stages[d.stage], this.#abGatePassed(r.id, d.stage));
    let activateAfter: number | null = null;
    if (spec.maintenanceWindow) {
      const w = this.#window(r.id, spec).currentOrNext(now);
      if (w) {
        activateAfter = w.start;
        entry.activateAfter = w.start;
        entry.activateBefore = w.end;
        entry.window = spec.maintenanceWindow;
      }
    }
    const first = d.notified_at === null;
    const fromVersion = first ? (device.desired?.models[spec.model]?.version ?? null) : d.from_version;
    const desired = writeDesiredModel(this.#d.devices, d.device_id, device.desired, spec.model, entry, now);
    this.store.updateDevice(r.id, d.device_id, {
      state: 'notified',
      generation: desired.generation,
      variant,
      activate_after: activateAfter,
      notified_at: now,
      healthy_since: null,
      succeed_at: null,
      // The timeout runs from when the device may activate, not from when it may start downloading.
      deadline_at: Math.max(now, activateAfter ?? now) + spec.perDeviceTimeoutSec * 1000,
      from_version: fromVersion,
    });
    this.store.event(r.id, now, d.stage, 'device.notified', d.device_id, { generation: desired.generation, attempt: d.attempts, ...(variant ? { variant } : {}) });
    this.metrics.notifications.inc();
    this.#outbox.push({ deviceId: d.device_id, desired });
    return true;
  }

  /** Devices the rollout moved go back to the version they were desired to run before (or lose the model if they had none). */
  #revertDevices(r: RolloutRow, now: number): void {
    const rows = this.#d.db
      .prepare(`SELECT * FROM rollout_devices WHERE rollout_id = ? AND notified_at IS NOT NULL AND state <> 'reverted'`)
      .all(r.id) as RolloutDeviceRow[];
    for (const d of rows) {
      const device = this.#d.devices.get(d.device_id);
      const current = device?.desired?.models[r.model] as DesiredModelEntry | undefined;
      // Only devices still desired at this rollout's version: a later rollout or an operator may have moved them since.
      if (device && device.status === 'accepted' && current?.version === r.version && (current.rollout === undefined || current.rollout === r.id)) {
        const desired = writeDesiredModel(this.#d.devices, d.device_id, device.desired, r.model, d.from_version === null ? null : { version: d.from_version }, now);
        this.#outbox.push({ deviceId: d.device_id, desired });
      }
      this.store.updateDevice(r.id, d.device_id, { state: 'reverted', finished_at: now });
      this.store.event(r.id, now, d.stage, 'device.reverted', d.device_id, { to: d.from_version });
    }
    this.store.event(r.id, now, null, 'reverted', null, { devices: rows.length });
  }

  #joinNewcomers(r: RolloutRow, spec: NormalizedSpec, now: number): void {
    const last = spec.stages.length - 1;
    for (const deviceId of newcomers(this.#d.db, r.id, spec.model, spec.target)) {
      // Newcomers join the last stage: they never become canaries of a rollout that already has them.
      this.store.insertDevice(r.id, deviceId, cohortRank(r.id, deviceId), last, 'pending', now);
      this.store.event(r.id, now, last, 'device.joined', deviceId);
    }
    this.store.update(r.id, now, { last_join_scan_at: now });
  }

  /** After a restart: reports that arrived while the engine was down (or before a crash) are applied from the stored reported state. */
  #reconcile(): void {
    const rows = this.store.notifiedWithReports();
    if (rows.length === 0) return;
    const now = this.#d.now();
    this.#baselines.clear();
    this.#tx(() => {
      for (const row of rows) this.#applyReport(row, row.r_model, row.r_version, JSON.parse(row.d_reported) as ReportedState, now);
    });
  }

  #conflicts(spec: NormalizedSpec, targets: readonly string[]): DryRun['conflicts'] {
    const out: DryRun['conflicts'] = [];
    const holders = this.store.holders(spec.model);
    if (holders.size === 0) return out;
    for (const [rolloutId, held] of holders) {
      let overlap = 0;
      for (const t of targets) if (held.has(t)) overlap++;
      if (overlap === 0) continue;
      const other = this.store.get(rolloutId)!;
      out.push({ rolloutId, priority: other.priority, overlap, action: spec.preempt && spec.priority > other.priority ? 'preempt' : 'refuse' });
    }
    return out;
  }

  #command(actor: AuditActor, id: string, action: string, allowed: readonly RolloutStateName[], apply: (r: RolloutRow, now: number) => void, details: Record<string, unknown> = {}): RolloutSummary {
    const now = this.#d.now();
    this.#tx(() => {
      const r = this.store.get(id);
      if (!r) throw new FlotillaError('FLT_ROLLOUT_NOT_FOUND', `no rollout ${id}`);
      if (!allowed.includes(r.state)) throw new FlotillaError('FLT_ROLLOUT_STATE_CONFLICT', `cannot ${action} a rollout that is ${r.state}`, { state: r.state });
      apply(r, now);
      this.store.event(r.id, now, r.stage, action, null, { by: actor.name, ...details });
      this.#d.audit.record(actor, `rollout.${action}`, r.id, details);
    });
    this.#flush();
    this.#changed([id]);
    this.#wake();
    return this.get(id);
  }

  #summary(r: RolloutRow, withFunnel: boolean): RolloutSummary {
    const counts = EMPTY_COUNTS();
    const perStage = new Map<number, { counts: Record<RolloutDeviceState, number>; baking: number }>();
    let targetCount = 0;
    for (const c of this.store.counts(r.id)) {
      counts[c.state] += c.n;
      targetCount += c.n;
      const s = perStage.get(c.stage) ?? { counts: EMPTY_COUNTS(), baking: 0 };
      s.counts[c.state] += c.n;
      s.baking += c.baking;
      perStage.set(c.stage, s);
    }
    const spec = this.store.specOf(r);
    const out: RolloutSummary = {
      id: r.id,
      name: r.name,
      model: r.model,
      version: r.version,
      state: r.state,
      stage: r.stage,
      stageStartedAt: r.stage_started_at,
      reason: r.reason,
      priority: r.priority,
      createdBy: r.created_by,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      finishedAt: r.finished_at,
      targetCount,
      counts,
      spec,
    };
    if (withFunnel) {
      const reached = new Map<string, number>();
      for (const e of this.#d.db
        .prepare(
          `SELECT stage, kind, COUNT(DISTINCT device_id) AS n FROM rollout_events
           WHERE rollout_id = ? AND kind IN ('device.notified', 'device.healthy', 'device.succeeded') GROUP BY stage, kind`,
        )
        .all(r.id) as Array<{ stage: number; kind: string; n: number }>) {
        reached.set(`${e.stage}/${e.kind}`, e.n);
      }
      // The OTA step each notified device reports for the new version, read from its last report.
      const inFlight = new Map<number, Record<string, number>>();
      const path = `$.models."${r.model}"`;
      for (const d of this.#d.db
        .prepare(
          `SELECT rd.stage AS stage, json_extract(dv.reported, ? || '.state') AS state, json_extract(dv.reported, ? || '.version') AS version,
                  json_extract(dv.reported, ? || '.target') AS target
           FROM rollout_devices rd JOIN devices dv ON dv.id = rd.device_id WHERE rd.rollout_id = ? AND rd.state = 'notified'`,
        )
        .all(path, path, path, r.id) as Array<{ stage: number; state: string | null; version: string | null; target: string | null }>) {
        const aboutNew = d.version === r.version || d.target === r.version;
        const step = aboutNew && (IN_FLIGHT_STEPS as readonly string[]).includes(d.state ?? '') ? d.state! : 'waiting';
        const m = inFlight.get(d.stage) ?? {};
        m[step] = (m[step] ?? 0) + 1;
        inFlight.set(d.stage, m);
      }
      const failedBy = new Map<number, Record<string, number>>();
      for (const f of this.#d.db
        .prepare(
          `SELECT stage, COALESCE(error, state) AS reason, COUNT(*) AS n FROM rollout_devices
           WHERE rollout_id = ? AND state IN ('failed', 'rejected', 'timedOut') GROUP BY stage, reason`,
        )
        .all(r.id) as Array<{ stage: number; reason: string; n: number }>) {
        const m = failedBy.get(f.stage) ?? {};
        m[f.reason] = f.n;
        failedBy.set(f.stage, m);
      }
      out.funnel = spec.stages.map((s, i) => {
        const st = perStage.get(i) ?? { counts: EMPTY_COUNTS(), baking: 0 };
        const size = Object.values(st.counts).reduce((a, b) => a + b, 0) - st.counts.skipped;
        return {
          stage: i,
          size,
          required: requiredSuccesses(size, s.successThreshold),
          counts: st.counts,
          baking: st.baking,
          reached: {
            notified: reached.get(`${i}/device.notified`) ?? 0,
            healthy: reached.get(`${i}/device.healthy`) ?? 0,
            succeeded: reached.get(`${i}/device.succeeded`) ?? 0,
          },
          inFlight: inFlight.get(i) ?? {},
          failedBy: failedBy.get(i) ?? {},
        };
      });
    }
    return out;
  }

  #window(rolloutId: string, spec: NormalizedSpec): MaintenanceWindowSchedule {
    let w = this.#windows.get(rolloutId);
    if (!w) {
      w = new MaintenanceWindowSchedule(spec.maintenanceWindow!);
      this.#windows.set(rolloutId, w);
    }
    return w;
  }

  #tx<T>(fn: () => T): T {
    const queued = this.#outbox.length;
    try {
      return this.#d.db.transaction(fn)();
    } catch (err) {
      // Nothing committed, so nothing may be published.
      this.#outbox.length = queued;
      throw err;
    }
  }

  /** Publishes committed desired states. A failed publish is only logged: the state is retained and re-sent at reconnect. */
  #flush(): void {
    if (this.#outbox.length === 0) return;
    const batch = this.#outbox.splice(0);
    for (const { deviceId, desired } of batch) {
      const p = this.#d.publisher
        .publishDesired(deviceId, desired)
        .catch((err: unknown) => this.#d.logger?.warn({ err, deviceId }, 'desired state not published; it is sent again when the device reconnects'))
        .finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
  }

  #wake(): void {
    this.onWork?.();
  }

  #newId(): string {
    return `ro-${randomBytes(6).toString('hex')}`;
  }
}
