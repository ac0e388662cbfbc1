import type { AbComparison, AbInterval } from '@flotilla/protocol';
import { table } from '../../output.ts';

function num(x: number | null, digits: number): string {
  return x === null ? '-' : x.toFixed(digits);
}

/** `estimate [low, high]`, rates in percent with `pct`; `-` when there is nothing to estimate. */
export function intervalText(i: AbInterval, opts: { pct?: boolean; digits?: number; signed?: boolean } = {}): string {
  if (i.estimate === null) return '-';
  const k = opts.pct ? 100 : 1;
  const d = opts.digits ?? 2;
  const f = (x: number | null) => (x === null ? '?' : `${opts.signed && x * k > 0 ? '+' : ''}${(x * k).toFixed(d)}`);
  const unit = opts.pct ? '%' : '';
  return i.low === null || i.high === null ? `${f(i.estimate)}${unit}` : `${f(i.estimate)}${unit} [${f(i.low)}, ${f(i.high)}]`;
}

/** The comparison table `flotilla rollout ab` and `flotilla model ab` print: one column per arm and one for candidate − control. */
export function abText(c: AbComparison): string[] {
  if (c.candidate === null) return [`${c.model}: no device reports an A/B split`];
  const { control, candidate } = c.arms;
  const d = c.difference;
  const rows: string[][] = [
    ['versions', control.versions.join(', ') || '-', candidate.versions.join(', ') || '-', ''],
    ['devices', String(control.devices), String(candidate.devices), ''],
    ['requests', String(control.requests), String(candidate.requests), ''],
    ['share', control.share === null ? '-' : `${num(control.share * 100, 1)}%`, candidate.share === null ? '-' : `${num(candidate.share * 100, 1)}%`, ''],
    ['error rate', intervalText(control.errorRate, { pct: true }), intervalText(candidate.errorRate, { pct: true }), intervalText(d.errorRate, { pct: true, signed: true })],
    ['escalation rate', intervalText(control.escalationRate, { pct: true }), intervalText(candidate.escalationRate, { pct: true }), intervalText(d.escalationRate, { pct: true, signed: true })],
    ['mean latency ms', intervalText(control.meanLatencyMs), intervalText(candidate.meanLatencyMs), intervalText(d.meanLatencyMs, { signed: true })],
    ['mean confidence', intervalText(control.meanConfidence, { digits: 4 }), intervalText(candidate.meanConfidence, { digits: 4 }), intervalText(d.meanConfidence, { digits: 4, signed: true })],
  ];
  return [
    `${c.model}: candidate ${c.candidate}, ${Math.round(c.level * 100)}% intervals${c.latencyRatio === null ? '' : `, latency ratio ${c.latencyRatio.toFixed(2)}`}`,
    ...table(['', 'control', 'candidate', 'candidate − control'], rows),
  ];
}
