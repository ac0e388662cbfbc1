import type { DryRunResult, RolloutView } from '@flotilla/protocol';
import { fields, table, when } from '../../output.ts';

type Funnel = NonNullable<RolloutView['funnel']>[number];

const n = (counts: Record<string, number>, state: string) => counts[state] ?? 0;

/** Devices of a stage that ended badly, as `failed 1, timedOut 2` (empty when none). */
export function problemsText(counts: Record<string, number>): string {
  return ['failed', 'rejected', 'timedOut']
    .filter((s) => n(counts, s) > 0)
    .map((s) => `${s} ${n(counts, s)}`)
    .join(', ');
}

/** Steps of an install in the order devices go through them. */
const STEPS = ['waiting', 'downloading', 'verified', 'installed', 'activated', 'healthy'] as const;

/**
 * One stage's funnel on one line: how far its devices got, where the notified ones are in their
 * install (`notified 3 [downloading 1, activated 2]`), and the failures by reason.
 */
export function funnelText(f: Funnel): string {
  const c = f.counts;
  const steps = STEPS.filter((s) => (f.inFlight?.[s] ?? 0) > 0).map((s) => `${s} ${f.inFlight![s]}`);
  const notified = `notified ${n(c, 'notified')}${steps.length > 0 ? ` [${steps.join(', ')}]` : ''}`;
  const parts = [`pending ${n(c, 'pending')}`, notified, `baking ${f.baking}`, `succeeded ${n(c, 'succeeded')}/${f.required} needed`];
  const reasons = Object.entries(f.failedBy ?? {}).map(([code, count]) => `${code} ${count}`);
  const problems = reasons.length > 0 ? `failed by reason: ${reasons.join(', ')}` : problemsText(c);
  return problems ? `${parts.join(', ')}, ${problems}` : parts.join(', ');
}

export function rolloutText(r: RolloutView): string[] {
  const stages = r.funnel?.length ?? 0;
  const lines = fields([
    ['rollout', r.name ? `${r.id} (${r.name})` : r.id],
    ['model', `${r.model} -> ${r.version}`],
    ['state', r.reason ? `${r.state} (${r.reason})` : r.state],
    ['stage', stages > 0 ? `${r.stage + 1} of ${stages}` : String(r.stage + 1)],
    ['devices', `${r.targetCount} targeted, ${n(r.counts, 'succeeded')} succeeded${problemsText(r.counts) ? `, ${problemsText(r.counts)}` : ''}`],
    ['created', `${when(r.createdAt)} by ${r.createdBy}`],
    ['finished', when(r.finishedAt)],
  ]);
  if (r.funnel && r.funnel.length > 0) {
    lines.push('', ...table(['STAGE', 'SIZE', 'FUNNEL'], r.funnel.map((f) => [String(f.stage + 1), String(f.size), funnelText(f)])));
  }
  return lines;
}

/** Seconds as `1h 2m 3s`. */
export function duration(sec: number): string {
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', `${s % 60}s`].filter((p) => p !== '');
  return h > 0 || m > 0 ? parts.filter((p) => p !== '0s').join(' ') : parts.join(' ');
}

export function planText(d: DryRunResult): string[] {
  const lines = fields([
    ['rollout', d.id],
    ['targets', `${d.targetCount} devices`],
    ['estimate', `${duration(d.estimate.durationSec)} (completes about ${when(d.estimate.completesAt)})${d.estimate.approvalGates > 0 ? `, plus ${d.estimate.approvalGates} approval gate(s)` : ''}`],
  ]);
  lines.push(
    '',
    ...table(
      ['STAGE', 'DEVICES', 'CUMULATIVE', 'REQUIRED', 'BAKE', 'APPROVAL', 'FIRST DEVICES'],
      d.stages.map((s) => [
        String(s.stage + 1),
        String(s.size),
        String(s.cumulative),
        String(s.required),
        duration(s.bakeTimeSec),
        s.requireApproval ? 'yes' : 'no',
        s.devices.slice(0, 5).map((x) => x.deviceId).join(',') + (s.devices.length > 5 || s.truncated ? ',…' : ''),
      ]),
    ),
  );
  for (const c of d.conflicts) lines.push(`conflict: rollout ${c.rolloutId} (priority ${c.priority}) holds ${c.overlap} of these devices; create would ${c.action === 'preempt' ? 'pre-empt it' : 'be refused'}`);
  lines.push(`assuming: ${d.estimate.assumptions.join('; ')}`);
  return lines;
}
