import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { exportPublicKey, importPrivateKey, importPublicKey, keyIdOf } from '@flotilla/release';
import type { CliIo } from '../../cli-io.ts';
import { usageError } from '../../cli-errors.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { fields } from '../../output.ts';
import type { TrustedKeysAnswer } from './list.ts';

export function registerTrust(keys: Command, io: CliIo): void {
  keys
    .command('trust')
    .description('trust a public key for signing releases (admin); the server key signs the rotation that adds it')
    .argument('<public-key>', 'raw base64 public key, or a file holding one (raw base64, SPKI PEM, or the private key PEM to derive it from)')
    .option('--label <label>', 'who or what the key belongs to')
    .action((publicKey: string, opts: { label?: string }, cmd: Command) => withInvocation(io, cmd, (inv) => trust(inv, publicKey, opts.label)));
}

/** Reads a public key from the argument itself or from the file it names; only the public half is ever sent. */
async function publicKeyFrom(inv: Invocation, arg: string): Promise<string> {
  let text = arg;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(arg)) {
    try {
      text = await readFile(inv.path(arg), 'utf8');
    } catch (err) {
      throw usageError(`${arg} is neither a raw base64 ed25519 public key nor a readable file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  try {
    const key = text.includes('PRIVATE KEY') ? importPrivateKey(text) : importPublicKey(text);
    return exportPublicKey(key, 'raw');
  } catch (err) {
    throw usageError(`${arg} does not hold an ed25519 key: ${(err as Error).message}`);
  }
}

async function trust(inv: Invocation, arg: string, label: string | undefined): Promise<void> {
  const publicKey = await publicKeyFrom(inv, arg);
  const keyId = keyIdOf(importPublicKey(publicKey));
  const view = await inv.client.send<TrustedKeysAnswer>('POST', '/v1/keys', { publicKey, ...(label ? { label } : {}) });
  inv.out.result({ keyId, ...view }, () =>
    fields([
      ['trusted', keyId],
      ['keys', `${view.keys.length} in the trusted set, ${view.rotations} rotation(s) applied`],
    ]),
  );
}
