import type { Command } from 'commander';
import type { DryRunResult, RolloutView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { withInvocation } from '../../invocation.ts';
import { planText, rolloutText } from './render-rollout.ts';
import { specFrom, specOptions, type SpecOptions } from './spec-input.ts';

export function registerRolloutCreate(rollout: Command, io: CliIo): void {
  specOptions(rollout.command('create').description('start a staged rollout from --file spec.json or from flags')).action((opts: SpecOptions, cmd: Command) =>
    withInvocation(io, cmd, async (inv) => {
      const spec = await specFrom(inv, opts, cmd);
      const r = await inv.client.send<RolloutView>('POST', '/v1/rollouts', spec);
      inv.out.result(r, () => rolloutText(r));
      inv.out.note(`follow it with: flotilla rollout status ${r.id} --watch`);
    }),
  );
}

export function registerRolloutPlan(rollout: Command, io: CliIo): void {
  specOptions(rollout.command('plan').description('dry run: how many devices, which go in each stage, how long it should take; starts nothing')).action(
    (opts: SpecOptions, cmd: Command) =>
      withInvocation(io, cmd, async (inv) => {
        const spec = await specFrom(inv, opts, cmd);
        const d = await inv.client.send<DryRunResult>('POST', '/v1/rollouts/dry-run', spec);
        inv.out.result(d, () => planText(d));
      }),
  );
}
