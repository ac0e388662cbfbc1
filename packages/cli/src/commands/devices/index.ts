import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { registerDeviceList } from './list.ts';
import { registerDeviceShow } from './show.ts';
import { registerDeviceTransitions } from './transition.ts';

export function registerDeviceCommands(program: Command, io: CliIo): void {
  const devices = program.command('devices').description('the fleet: list and inspect devices, accept, reject or revoke them');
  registerDeviceList(devices, io);
  registerDeviceShow(devices, io);
  registerDeviceTransitions(devices, io);
}
