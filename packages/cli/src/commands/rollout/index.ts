import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { registerRolloutCommands } from './commands.ts';
import { registerRolloutCreate, registerRolloutPlan } from './create.ts';
import { registerRolloutStatus } from './status.ts';
import { registerRolloutAb } from './ab.ts';

export function registerRolloutGroup(program: Command, io: CliIo): void {
  const rollout = program.command('rollout').description('staged OTA rollouts: plan, create, watch, A/B comparison, pause, resume, approve, cancel, revert');
  registerRolloutCreate(rollout, io);
  registerRolloutPlan(rollout, io);
  registerRolloutStatus(rollout, io);
  registerRolloutAb(rollout, io);
  registerRolloutCommands(rollout, io);
}
