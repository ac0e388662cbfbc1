import { InvalidArgumentError, Option, type Command } from 'commander';
import type { DeviceView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { usageError } from '../../cli-errors.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { table, when } from '../../output.ts';
import { labelsText, presenceText, reportedModelsText } from './render-device.ts';

interface ListOptions {
  status?: string;
  label: string[];
  online?: boolean;
  model?: string;
  version?: string;
  limit: number;
}

const SERVER_PAGE_MAX = 500;

function collect(value: string, previous: string[]): string[] {
  if (!/^[^=]+=.*$/.test(value)) throw new InvalidArgumentError('expected key=value');
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function registerDeviceList(devices: Command, io: CliIo): void {
  devices
    .command('list')
    .description('list devices, filtered by status, labels, presence or the model version they report')
    .addOption(new Option('--status <status>', 'only devices in this state').choices(['preauthorized', 'pending', 'accepted', 'rejected', 'revoked']))
    .option('--label <key=value>', 'only devices with this label (repeatable; all must match)', collect, [])
    .option('--online', 'only devices connected now')
    .option('--offline', 'only devices not connected now')
    .option('--model <name>', 'only devices reporting this model')
    .option('--version <version>', 'with --model: only devices reporting this version of it')
    .option('--limit <n>', 'show at most this many devices', positiveInt, 100)
    .action((opts: ListOptions & { offline?: boolean }, cmd: Command) =>
      withInvocation(io, cmd, (inv) => {
        if (opts.online && opts.offline) throw usageError('--online and --offline exclude each other');
        if (opts.version !== undefined && opts.model === undefined) throw usageError('--version needs --model');
        return list(inv, { ...opts, online: opts.online ? true : opts.offline ? false : undefined });
      }),
    );
}

async function list(inv: Invocation, opts: ListOptions): Promise<void> {
  const items: DeviceView[] = [];
  let cursor: string | undefined;
  let more = false;
  // Page through with the server's cursor until the limit is reached.
  do {
    const page = await inv.client.get<{ items: DeviceView[]; nextCursor: string | null }>('/v1/devices', {
      status: opts.status,
      label: opts.label,
      online: opts.online,
      model: opts.model,
      version: opts.version,
      limit: Math.min(SERVER_PAGE_MAX, opts.limit - items.length),
      cursor,
    });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
    more = cursor !== undefined;
  } while (more && items.length < opts.limit);

  inv.out.result({ items, more }, () => {
    if (items.length === 0) return 'no devices match';
    const lines = table(
      ['DEVICE', 'STATUS', 'PRESENCE', 'LAST SEEN', 'IN SYNC', 'MODELS', 'LABELS'],
      items.map((d) => [d.id, d.status, presenceText(d), when(d.lastSeenAt), d.inSync ? 'yes' : 'no', reportedModelsText(d), labelsText(d.labels)]),
    );
    if (more) lines.push(`(more devices match; raise --limit above ${opts.limit})`);
    return lines;
  });
}
