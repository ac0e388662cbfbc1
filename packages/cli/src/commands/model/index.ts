import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { registerList } from './list.ts';
import { registerPublish } from './publish.ts';
import { registerPush } from './push.ts';
import { registerResolve } from './resolve.ts';
import { registerShow } from './show.ts';
import { registerSign } from './sign.ts';
import { registerModelAb } from '../rollout/ab.ts';

export function registerModelCommands(program: Command, io: CliIo): void {
  const model = program.command('model').description('the model registry: push builds, publish and sign releases, explain variant choices');
  registerPush(model, io);
  registerList(model, io);
  registerShow(model, io);
  registerPublish(model, io);
  registerSign(model, io);
  registerResolve(model, io);
  registerModelAb(model, io);
}
