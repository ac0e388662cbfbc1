import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Db } from '../db/open.ts';
import { ACTIVE_SQL } from './rollout-store.ts';

/** Rollout metrics on the server's registry. One engine per registry (metric names are unique in it). */
export function createRolloutMetrics(registry: Registry, db: Db) {
  const devices = new Gauge({
    name: 'flotilla_rollout_devices',
    help: 'Devices of each active rollout by rollout device state',
    labelNames: ['rollout', 'state'] as const,
    registers: [registry],
    // Read from the database at scrape time so the gauge can never drift from the engine's state.
    collect() {
      this.reset();
      const rows = db
        .prepare(`SELECT rd.rollout_id AS r, rd.state AS s, COUNT(*) AS n FROM rollout_devices rd JOIN rollouts ro ON ro.id = rd.rollout_id WHERE ro.state IN ${ACTIVE_SQL} GROUP BY rd.rollout_id, rd.state`)
        .all() as Array<{ r: string; s: string; n: number }>;
      for (const row of rows) this.set({ rollout: row.r, state: row.s }, row.n);
    },
  });
  const stage = new Gauge({
    name: 'flotilla_rollout_stage',
    help: 'Current stage index of each active rollout',
    labelNames: ['rollout', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const row of db.prepare(`SELECT id, stage, state FROM rollouts WHERE state IN ${ACTIVE_SQL}`).all() as Array<{ id: string; stage: number; state: string }>) {
        this.set({ rollout: row.id, state: row.state }, row.stage);
      }
    },
  });
  return {
    devices,
    stage,
    aborts: new Counter({ name: 'flotilla_rollout_aborts_total', help: 'Rollouts aborted, by cause and action', labelNames: ['cause', 'action'] as const, registers: [registry] }),
    notifications: new Counter({ name: 'flotilla_rollout_notifications_total', help: 'Desired-state changes sent by rollouts (first sends and retries)', registers: [registry] }),
    outcomes: new Counter({ name: 'flotilla_rollout_device_outcomes_total', help: 'Rollout device outcomes', labelNames: ['outcome'] as const, registers: [registry] }),
    tick: new Histogram({ name: 'flotilla_rollout_tick_seconds', help: 'Duration of one rollout engine tick', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers: [registry] }),
  };
}

export type RolloutMetrics = ReturnType<typeof createRolloutMetrics>;
