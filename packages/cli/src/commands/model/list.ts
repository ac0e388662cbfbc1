import type { Command } from 'commander';
import type { ModelView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { table, when } from '../../output.ts';

export function registerList(model: Command, io: CliIo): void {
  model
    .command('list')
    .description('list the models in the registry')
    .action((_opts: unknown, cmd: Command) => withInvocation(io, cmd, list));
}

async function list(inv: Invocation): Promise<void> {
  const { items } = await inv.client.get<{ items: ModelView[] }>('/v1/models');
  inv.out.result({ items }, () =>
    items.length === 0
      ? 'no models yet (push one with `flotilla model push`)'
      : table(
          ['MODEL', 'VERSIONS', 'LATEST PUBLISHED', 'UPDATED', 'DESCRIPTION'],
          items.map((m) => [m.name, String(m.versions), m.latestPublished ?? '-', when(m.updatedAt), m.description]),
        ),
  );
}
