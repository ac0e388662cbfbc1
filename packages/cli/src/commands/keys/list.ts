import type { Command } from 'commander';
import type { TrustedKeyEntry } from '@flotilla/release';
import type { CliIo } from '../../cli-io.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { table, when } from '../../output.ts';

/** GET /v1/keys (`TrustedKeysView`) with the key entries typed by release. */
export interface TrustedKeysAnswer {
  keys: TrustedKeyEntry[];
  serverKeyId: string | null;
  rotations: number;
}

export function registerKeyList(keys: Command, io: CliIo): void {
  keys
    .command('list')
    .description('list the release-signing keys the server and its devices trust')
    .action((_opts: unknown, cmd: Command) => withInvocation(io, cmd, list));
}

async function list(inv: Invocation): Promise<void> {
  const view = await inv.client.get<TrustedKeysAnswer>('/v1/keys');
  inv.out.result(view, () => [
    ...table(
      ['KEY ID', 'LABEL', 'STATE', 'NOT BEFORE', 'NOT AFTER', 'ROLE'],
      view.keys.map((k) => [
        k.keyId,
        k.label ?? '-',
        k.revoked ? 'revoked' : 'trusted',
        when(k.notBefore),
        when(k.notAfter),
        k.keyId === view.serverKeyId ? 'server (online)' : 'offline',
      ]),
    ),
    `${view.rotations} rotation(s) applied`,
  ]);
}
