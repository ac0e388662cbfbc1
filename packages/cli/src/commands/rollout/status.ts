import type { Command } from 'commander';
import type { RolloutView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { CliError } from '../../cli-errors.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { funnelText, rolloutText } from './render-rollout.ts';
import { stageBars } from './watch-bars.ts';

export function registerRolloutStatus(rollout: Command, io: CliIo): void {
  rollout
    .command('status')
    .description('state, stage and per-stage funnel of a rollout; --watch follows it live until it ends')
    .argument('<id>', 'rollout id')
    .option('-w, --watch', 'follow the live stream until the rollout reaches a final state (exit 1 unless it completed)')
    .action((id: string, opts: { watch?: boolean }, cmd: Command) =>
      withInvocation(io, cmd, async (inv) => {
        if (opts.watch) return watch(inv, id);
        const r = await inv.client.get<RolloutView>(apiPath`/v1/rollouts/${id}`);
        inv.out.result(r, () => rolloutText(r));
      }),
    );
}

/**
 * Follows `/v1/rollouts/:id/stream`. With --json every event is one JSON line on stdout; on a
 * terminal, bars per stage on stderr; otherwise one text line per change on stdout (for logs).
 */
async function watch(inv: Invocation, id: string): Promise<void> {
  const bars = inv.showProgress ? stageBars(inv.io.stderr) : null;
  let last: RolloutView | null = null;
  let ended = false;
  try {
    for await (const e of inv.client.events(apiPath`/v1/rollouts/${id}/stream`)) {
      const data = JSON.parse(e.data) as unknown;
      if (inv.out.json) inv.io.stdout.write(`${JSON.stringify({ event: e.event, data })}\n`);
      if (e.event === 'progress') {
        last = data as RolloutView;
        if (bars) bars.update(last);
        else if (!inv.out.json) inv.io.stdout.write(`${progressLine(last)}\n`);
      } else if (e.event === 'end') {
        ended = true;
        break;
      }
    }
  } finally {
    bars?.stop();
  }
  if (!ended || !last) throw new CliError('FLT_CLI_SERVER_UNREACHABLE', `the server closed the stream of ${id} before the rollout ended; run the command again to go on watching`);
  if (!inv.out.json) {
    inv.io.stdout.write(`${rolloutText(last).join('\n')}\n`);
    for (const line of await failuresByReason(inv, id, last)) inv.io.stdout.write(`${line}\n`);
  }
  if (last.state !== 'completed') {
    throw new CliError('FLT_CLI_ROLLOUT_NOT_COMPLETED', `rollout ${id} ended ${last.state}${last.reason ? `: ${last.reason}` : ''}`, { details: { state: last.state, reason: last.reason } });
  }
}

function progressLine(r: RolloutView): string {
  const f = r.funnel?.[r.stage];
  return `${r.id} ${r.state} stage ${r.stage + 1}/${r.funnel?.length ?? '?'}${f ? ` | ${funnelText(f)}` : ''}`;
}

/** Failed, rejected and timed-out devices grouped by the error they ended with (first 200 of each state). */
async function failuresByReason(inv: Invocation, id: string, r: RolloutView): Promise<string[]> {
  const lines: string[] = [];
  for (const state of ['failed', 'rejected', 'timedOut'] as const) {
    if ((r.counts[state] ?? 0) === 0) continue;
    const list = await inv.client.get<{ items: Array<{ deviceId: string; error: string | null }> }>(apiPath`/v1/rollouts/${id}/devices`, { state, limit: 200 });
    const byReason = new Map<string, string[]>();
    for (const d of list.items) {
      const reason = d.error ?? state;
      byReason.set(reason, [...(byReason.get(reason) ?? []), d.deviceId]);
    }
    for (const [reason, devices] of byReason) lines.push(`${state} ${devices.length} ${reason}: ${devices.slice(0, 10).join(', ')}${devices.length > 10 ? ', …' : ''}`);
  }
  return lines;
}
