import type { Command } from 'commander';
import type { AbComparison } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation } from '../../invocation.ts';
import { abText } from './render-ab.ts';

/** `flotilla rollout ab <id>`: the A/B comparison of a rollout's new version on its devices. */
export function registerRolloutAb(rollout: Command, io: CliIo): void {
  rollout
    .command('ab')
    .description("A/B comparison of a rollout's new version against the old one on its devices, with 95% intervals")
    .argument('<id>', 'rollout id')
    .action((id: string, _opts: unknown, cmd: Command) =>
      withInvocation(io, cmd, async (inv) => {
        const c = await inv.client.get<AbComparison>(apiPath`/v1/rollouts/${id}/ab`);
        inv.out.result(c, () => abText(c));
      }),
    );
}

/** `flotilla model ab <name>`: the A/B comparison of a model across the fleet. */
export function registerModelAb(model: Command, io: CliIo): void {
  model
    .command('ab')
    .description('A/B comparison of a model across the fleet (candidate against control, 95% intervals)')
    .argument('<name>', 'model name')
    .option('--candidate <version>', 'compare this candidate (default: the one most devices split with)')
    .action((name: string, opts: { candidate?: string }, cmd: Command) =>
      withInvocation(io, cmd, async (inv) => {
        const c = await inv.client.get<AbComparison>(apiPath`/v1/models/${name}/ab`, opts.candidate ? { candidate: opts.candidate } : {});
        inv.out.result(c, () => abText(c));
      }),
    );
}
