import type { Command } from 'commander';
import type { RolloutView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation } from '../../invocation.ts';

const COMMANDS = {
  pause: 'stop notifying devices; devices already notified keep being tracked',
  resume: 'continue a paused rollout (abort rules count outcomes afresh after an abort)',
  approve: 'start the stage that waits for approval',
  cancel: 'stop the rollout for good; devices keep their current desired state',
  revert: 'give every device the rollout moved its previous version back',
} as const;

export function registerRolloutCommands(rollout: Command, io: CliIo): void {
  for (const [name, description] of Object.entries(COMMANDS)) {
    const cmd = rollout.command(name).description(description).argument('<id>', 'rollout id');
    // approve and resume take no reason on the server.
    if (name !== 'approve' && name !== 'resume') cmd.option('--reason <text>', 'why (stored with the rollout and in the audit log)');
    cmd.action((id: string, opts: { reason?: string }, c: Command) =>
      withInvocation(io, c, async (inv) => {
        const r = await inv.client.send<RolloutView>('POST', apiPath`/v1/rollouts/${id}/${name}`, opts.reason !== undefined ? { reason: opts.reason } : {});
        inv.out.result(r, () => `${r.id}: ${r.state}${r.reason ? ` (${r.reason})` : ''}`);
      }),
    );
  }
}
