import type { Command } from 'commander';
import type { CliIo } from '../../cli-io.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { publishLine, publishSummary, readSigningKey, signOffline } from './publishing.ts';

export function registerSign(model: Command, io: CliIo): void {
  model
    .command('sign')
    .description('sign a version that awaits its offline signature; the private key never leaves this machine')
    .argument('<name>', 'model name')
    .argument('<version>', 'model version')
    .requiredOption('--key <path>', 'ed25519 private key (PKCS#8 PEM) the server trusts')
    .action((name: string, version: string, opts: { key: string }, cmd: Command) => withInvocation(io, cmd, (inv) => sign(inv, name, version, opts.key)));
}

async function sign(inv: Invocation, name: string, version: string, keyPath: string): Promise<void> {
  const key = await readSigningKey(inv.path(keyPath));
  const answer = await signOffline(inv.client, name, version, key);
  inv.out.result({ model: name, version, ...publishSummary(answer) }, () => `${name} ${version} ${publishLine(answer)}`);
}
