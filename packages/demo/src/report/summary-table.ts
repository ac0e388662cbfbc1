import { accuracy, escalationShare, totalTraffic, type DeviceTraffic } from '../traffic/device-traffic.ts';
import type { CheckResult, DemoObservations, RolloutResult } from './checks.ts';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Left-aligns the first `left` columns and right-aligns the rest. */
function table(rows: string[][], left: number): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c < left ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}

function trafficCells(t: DeviceTraffic): string[] {
  return [String(t.requests), String(t.edge), String(t.cloud), String(t.edgeFallback), pct(escalationShare(t)), String(t.failed), pct(accuracy(t))];
}

function rolloutLine(label: string, r: RolloutResult | null): string {
  if (!r) return `${label}  did not run`;
  const counts = Object.entries(r.counts)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${label} ${r.version}  ${r.state} after ${secs(r.durationMs)}  (${counts})${r.reason ? `  ${r.reason}` : ''}`;
}

/** The table that ends the demo: per device, per rollout, every check, and the wall time. */
export function renderSummary(o: DemoObservations, checks: readonly CheckResult[]): string {
  const head = ['device', 'role', 'running', 'requests', 'edge', 'cloud', 'edge-fallback', 'escalated', 'failed', 'accuracy'];
  const rows = o.devices.map((d) => [
    d.deviceId,
    d.canary ? 'v3 canary' : '',
    d.running ? `${d.running.version ?? 'none'} (${d.running.state})` : 'no report',
    ...trafficCells(d.traffic),
  ]);
  const total = ['all', '', '', ...trafficCells(totalTraffic(o.devices.map((d) => d.traffic)))];
  const failed = checks.filter((c) => !c.ok).length;
  const lines = [
    '',
    'Summary',
    ...table([head, ...rows, total], 3).map((l) => `  ${l}`),
    '',
    '  rollouts',
    `    ${rolloutLine('v1', o.v1)}`,
    `    ${rolloutLine('v2', o.v2)}`,
    `    ${rolloutLine('v3', o.v3)}`,
    '',
    '  checks',
    ...checks.map((c) => `    ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`),
    '',
    `  wall time ${secs(o.wallMs)}; ${failed === 0 ? `all ${checks.length} checks passed` : `${failed} of ${checks.length} checks FAILED`}`,
    '',
  ];
  return lines.join('\n');
}
