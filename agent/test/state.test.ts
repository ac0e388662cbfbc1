import { describe, expect, it, onTestFinished } from 'vitest';
import type { DesiredState, ReportedState } from '@flotilla/protocol';
import { PendingApplier, type DesiredStateApplier } from '../src/state/applier.ts';
import { StateReconciler } from '../src/state/reconciler.ts';
import { StateStore } from '../src/state/state-store.ts';
import { openAgentDatabase } from '../src/storage/database.ts';
import { silentLogger } from './helpers/logger.ts';
import { tempDir } from './helpers/temp-dir.ts';

function reconciler(dir: string, applier: DesiredStateApplier) {
  const db = openAgentDatabase(dir);
  onTestFinished(() => {
    if (db.open) db.close();
  });
  const reports: ReportedState[] = [];
  const r = new StateReconciler({ store: new StateStore(db), applier, logger: silentLogger, report: (x) => reports.push(x) });
  return { db, r, reports };
}

const desired = (generation: number, models: DesiredState['models'] = {}): DesiredState => ({ generation, models });

describe('desired/reported state', () => {
  it('reports every desired model as pending with the default applier', async () => {
    const { r, reports } = reconciler(tempDir(), new PendingApplier());
    r.submit(desired(1, { digits: { version: '1.0.0' }, faces: { version: '2.1.0' } }));
    await r.idle();
    expect(reports).toEqual([{ appliedGeneration: 1, models: { digits: { version: null, state: 'pending' }, faces: { version: null, state: 'pending' } } }]);
  });

  it('persists a desired state before applying it, so a crash mid-apply leaves it pending for the next start', async () => {
    const dir = tempDir();
    const stuck: DesiredStateApplier = { apply: () => new Promise(() => undefined) };
    const first = reconciler(dir, stuck);
    first.r.submit(desired(7, { digits: { version: '3.0.0' } }));
    first.db.close(); // the process dies while apply() runs

    const second = reconciler(dir, new PendingApplier());
    expect(second.r.pendingDesired()?.generation).toBe(7);
    second.r.retryPending();
    await second.r.idle();
    expect(second.reports.map((x) => x.appliedGeneration)).toEqual([7]);
    expect(second.r.pendingDesired()).toBeUndefined();
  });

  it('does not mark a generation applied when the applier throws or returns an invalid report', async () => {
    const failing: DesiredStateApplier = {
      apply: async (d) => {
        if (d.generation === 1) throw new Error('disk full');
        return { 'bad name!': { version: null, state: 'pending' } } as ReportedState['models'];
      },
    };
    const { r, reports } = reconciler(tempDir(), failing);
    r.submit(desired(1));
    await r.idle();
    r.submit(desired(2));
    await r.idle();
    expect(reports).toEqual([]);
    expect(r.reported).toBeUndefined();
    expect(r.pendingDesired()?.generation).toBe(2);
  });

  it('applies one at a time and, while busy, keeps only the newest waiting generation', async () => {
    const applied: number[] = [];
    let release: () => void = () => undefined;
    const slow: DesiredStateApplier = {
      apply: async (d) => {
        applied.push(d.generation);
        if (d.generation === 1) await new Promise<void>((resolve) => (release = resolve));
        return {};
      },
    };
    const { r } = reconciler(tempDir(), slow);
    expect(r.submit(desired(1))).toBe(true);
    expect(r.submit(desired(2))).toBe(true);
    expect(r.submit(desired(3))).toBe(true);
    expect(r.submit(desired(3))).toBe(false);
    release();
    await r.idle();
    expect(applied).toEqual([1, 3]);
    expect(r.submit(desired(2))).toBe(false);
    expect(r.reported?.appliedGeneration).toBe(3);
  });
});
