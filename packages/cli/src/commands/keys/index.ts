import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { registerGenerate } from './generate.ts';
import { registerKeyList } from './list.ts';
import { registerTrust } from './trust.ts';

export function registerKeyCommands(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('release-signing keys: make one offline, trust it, list the trusted set');
  registerGenerate(keys, io);
  registerTrust(keys, io);
  registerKeyList(keys, io);
}
