import type { Command } from 'commander';
import type { DeviceView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { renderDevice } from './render-device.ts';

export function registerDeviceShow(devices: Command, io: CliIo): void {
  devices
    .command('show')
    .description('one device: status, presence, labels, inventory, desired and reported state')
    .argument('<id>', 'device id')
    .action((id: string, _opts: unknown, cmd: Command) => withInvocation(io, cmd, (inv) => show(inv, id)));
}

async function show(inv: Invocation, id: string): Promise<void> {
  const d = await inv.client.get<DeviceView>(apiPath`/v1/devices/${id}`);
  inv.out.result(d, () => renderDevice(d));
}
