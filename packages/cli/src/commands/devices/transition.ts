import type { Command } from 'commander';
import type { DeviceView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation } from '../../invocation.ts';

const ACTIONS = {
  accept: 'accept a pending device: its next enrollment call gets a credential',
  reject: 'reject a pending device',
  revoke: 'revoke a device: its credential stops working and its session is cut at once',
} as const;

export function registerDeviceTransitions(devices: Command, io: CliIo): void {
  for (const [action, description] of Object.entries(ACTIONS)) {
    devices
      .command(action)
      .description(description)
      .argument('<id>', 'device id')
      .action((id: string, _opts: unknown, cmd: Command) =>
        withInvocation(io, cmd, async (inv) => {
          const d = await inv.client.send<DeviceView>('POST', apiPath`/v1/devices/${id}/${action}`);
          inv.out.result(d, () => `${d.id}: ${d.status}`);
        }),
      );
  }
}
