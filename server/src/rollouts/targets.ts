import type { RolloutTarget } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';
import { selectorOf } from './spec.ts';

/**
 * Which accepted devices a target covers: listed ids, or devices carrying every label of the
 * selector (labels plus the group shorthand). Label keys are schema-checked against a pattern
 * without quotes, so quoting them inside the JSON path is safe.
 */
function targetWhere(target: RolloutTarget): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (target.deviceIds) {
    parts.push('d.id IN (SELECT value FROM json_each(?))');
    args.push(JSON.stringify(target.deviceIds));
  }
  const selector = Object.entries(selectorOf(target));
  if (selector.length > 0) {
    parts.push('(' + selector.map(() => `json_extract(d.labels, '$."' || ? || '"') = ?`).join(' AND ') + ')');
    for (const [k, v] of selector) args.push(k, v);
  }
  return { sql: `d.status = 'accepted' AND (${parts.join(' OR ')})`, args };
}

export function matchTargets(db: Db, target: RolloutTarget): string[] {
  const { sql, args } = targetWhere(target);
  return (db.prepare(`SELECT d.id FROM devices d WHERE ${sql} ORDER BY d.id`).pluck().all(...args) as string[]);
}

/** Devices that match a target now but are not in the rollout yet, and not held by another active rollout of the model. */
export function newcomers(db: Db, rolloutId: string, model: string, target: RolloutTarget): string[] {
  const { sql, args } = targetWhere(target);
  return db
    .prepare(
      `SELECT d.id FROM devices d WHERE ${sql}
       AND NOT EXISTS (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = ? AND rd.device_id = d.id)
       AND NOT EXISTS (SELECT 1 FROM rollout_devices rd2 JOIN rollouts r2 ON r2.id = rd2.rollout_id
                       WHERE rd2.device_id = d.id AND r2.model = ? AND r2.id <> ? AND rd2.stage >= 0
                         AND r2.state IN ('running', 'awaitingApproval', 'paused'))
       ORDER BY d.id`,
    )
    .pluck()
    .all(...args, rolloutId, model, rolloutId) as string[];
}
