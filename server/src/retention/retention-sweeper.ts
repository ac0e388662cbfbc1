import { setImmediate as nextTurn } from 'node:timers/promises';
import { Counter, type Registry } from 'prom-client';
import type { AuditLog } from '../audit/audit-log.ts';
import { unrefIntervals, type IntervalTimers } from '../clock/interval-timers.ts';
import type { ServerConfig } from '../config/schema.ts';
import type { Db } from '../db/open.ts';

const DAY_MS = 86_400_000;

/** How long each kind of record is kept, in days (0: for ever), and how often the sweep runs (config `retention`). */
export type RetentionConfig = ServerConfig['retention'];

/** Rows one sweep removed, per table. */
export interface SweepResult {
  deviceEvents: number;
  hardExamples: number;
  hardExampleInputs: number;
  audit: number;
}

interface Target {
  key: keyof SweepResult;
  table: string;
  /** The server's own clock at receipt: a device's clock may be wrong, the server's decides age. */
  column: string;
  /** The row's key, for batched deletes (the inputs table has no rowid). */
  rowKey: string;
  days: (c: RetentionConfig) => number;
}

const TARGETS: readonly Target[] = [
  { key: 'deviceEvents', table: 'device_events', column: 'received_at', rowKey: 'rowid', days: (c) => c.deviceEventsDays },
  { key: 'hardExamples', table: 'hard_examples', column: 'received_at', rowKey: 'rowid', days: (c) => c.hardExamplesDays },
  { key: 'hardExampleInputs', table: 'hard_example_inputs', column: 'received_at', rowKey: 'device_id, request_id', days: (c) => c.hardExamplesDays },
  { key: 'audit', table: 'audit_log', column: 'ts', rowKey: 'rowid', days: (c) => c.auditDays },
];

export interface RetentionSweeperOptions {
  db: Db;
  config: RetentionConfig;
  now: () => number;
  audit: AuditLog;
  registry?: Registry;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Rows one DELETE removes before the sweep lets the event loop run (default 2,000). */
  batchRows?: number;
  timers?: IntervalTimers;
}

/**
 * Removes device events, hard examples (with their uploaded inputs) and audit entries older than
 * their retention, so a long-lived server's database stops growing with its traffic. Deletes go in
 * small batches, each its own short transaction, with a turn of the event loop between them, so a
 * sweep never holds the loop or the write lock for long. A sweep that removed audit entries leaves
 * an audit entry saying so. `close()` stops the timer and waits for a sweep in progress.
 */
export class RetentionSweeper {
  readonly #opts: RetentionSweeperOptions;
  readonly #batch: number;
  readonly #pruned: Counter<'table'> | undefined;
  #timer: unknown;
  #running: Promise<SweepResult> | null = null;
  #closed = false;

  constructor(opts: RetentionSweeperOptions) {
    this.#opts = opts;
    this.#batch = opts.batchRows ?? 2_000;
    this.#pruned = opts.registry
      ? new Counter({ name: 'flotilla_retention_pruned_rows_total', help: 'Rows removed by the retention sweep, by table', labelNames: ['table'], registers: [opts.registry] })
      : undefined;
  }

  /**
   * Sweeps now and then every `sweepIntervalSec` (neither when 0): a server restarted more often
   * than the interval still sweeps.
   */
  start(): void {
    const every = this.#opts.config.sweepIntervalSec;
    if (every <= 0 || this.#timer !== undefined || this.#closed) return;
    const run = (): void => {
      this.sweep().catch((err: unknown) => this.#opts.logger?.warn({ err }, 'retention sweep failed'));
    };
    this.#timer = (this.#opts.timers ?? unrefIntervals).setInterval(run, every * 1000);
    run();
  }

  /** One sweep now; a sweep already running is joined rather than doubled. */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #sweep(): Promise<SweepResult> {
    const result: SweepResult = { deviceEvents: 0, hardExamples: 0, hardExampleInputs: 0, audit: 0 };
    const now = this.#opts.now();
    // A close() mid-sweep stops after the current batch, but what was removed is still recorded.
    tables: for (const t of TARGETS) {
      const days = t.days(this.#opts.config);
      if (days <= 0 || !this.#tableExists(t.table)) continue;
      const cutoff = now - days * DAY_MS;
      const del = this.#opts.db.prepare(`DELETE FROM ${t.table} WHERE (${t.rowKey}) IN (SELECT ${t.rowKey} FROM ${t.table} WHERE ${t.column} < ? LIMIT ?)`);
      for (;;) {
        if (this.#closed) break tables;
        const removed = del.run(cutoff, this.#batch).changes;
        result[t.key] += removed;
        this.#pruned?.inc({ table: t.table }, removed);
        if (removed < this.#batch) break;
        await nextTurn();
      }
    }
    if (result.audit > 0) {
      this.#opts.audit.record({ name: 'retention', role: 'system' }, 'retention.prune', null, { ...result, auditDays: this.#opts.config.auditDays });
    }
    if (Object.values(result).some((n) => n > 0)) this.#opts.logger?.info({ ...result }, 'retention sweep');
    return result;
  }

  #tableExists(name: string): boolean {
    return this.#opts.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  /** Stops sweeping and waits for a sweep in progress (it stops after its current batch). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) (this.#opts.timers ?? unrefIntervals).clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}
