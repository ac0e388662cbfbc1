import { AbReport } from '@flotilla/protocol';
import { Compile } from 'typebox/compile';
import type { Db } from '../db/open.ts';
import type { DeviceAbReport } from './ab-comparison.ts';

const check = Compile(AbReport);

/**
 * The latest A/B report of `model` from each accepted device, read from the reported states the
 * device ingest stored (a report carries counters since its split started, so the latest one per
 * device is all there is to pool). With `rolloutId`, only that rollout's devices.
 */
export function readAbReports(db: Db, model: string, opts: { rolloutId?: string } = {}): DeviceAbReport[] {
  // Model names are `[A-Za-z0-9._-]`, validated by the route, so the JSON path needs no escaping beyond quotes.
  const path = `$.models."${model}".ab`;
  const rows = (
    opts.rolloutId === undefined
      ? db.prepare(`SELECT id, json_extract(reported, ?) AS ab FROM devices WHERE status = 'accepted' AND json_extract(reported, ?) IS NOT NULL`).all(path, path)
      : db
          .prepare(
            `SELECT d.id AS id, json_extract(d.reported, ?) AS ab FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id
             WHERE rd.rollout_id = ? AND d.status = 'accepted' AND json_extract(d.reported, ?) IS NOT NULL`,
          )
          .all(path, opts.rolloutId, path)
  ) as Array<{ id: string; ab: string }>;
  const out: DeviceAbReport[] = [];
  for (const row of rows) {
    let report: unknown;
    try {
      report = JSON.parse(row.ab);
    } catch {
      continue;
    }
    // Reports were validated on ingest; one stored by an older server with another shape is skipped.
    if (check.Check(report)) out.push({ deviceId: row.id, report });
  }
  return out;
}
