import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { publishForOfflineSigning, publishLine, publishSummary, publishWithServerKey, readSigningKey, signOffline } from './publishing.ts';

export function registerPublish(model: Command, io: CliIo): void {
  model
    .command('publish')
    .description('publish a draft version: the server signs its manifest, or you sign it here with --offline-key')
    .argument('<name>', 'model name')
    .argument('<version>', 'model version')
    .option('--offline-key <path>', 'sign the manifest on this machine with this ed25519 PEM key')
    .option('--await-signature', 'freeze the manifest for an offline signer elsewhere (then `flotilla model sign`)')
    .action((name: string, version: string, opts: { offlineKey?: string; awaitSignature?: boolean }, cmd: Command) =>
      withInvocation(io, cmd, (inv) => publish(inv, name, version, opts)),
    );
}

async function publish(inv: Invocation, name: string, version: string, opts: { offlineKey?: string; awaitSignature?: boolean }): Promise<void> {
  const key = opts.offlineKey ? await readSigningKey(inv.path(opts.offlineKey)) : undefined;
  let answer;
  if (key) {
    await publishForOfflineSigning(inv.client, name, version);
    answer = await signOffline(inv.client, name, version, key);
  } else if (opts.awaitSignature) {
    answer = await publishForOfflineSigning(inv.client, name, version);
  } else {
    answer = await publishWithServerKey(inv.client, name, version);
  }
  inv.out.result({ model: name, version, ...publishSummary(answer) }, () => `${name} ${version} ${publishLine(answer)}`);
}
