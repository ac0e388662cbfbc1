import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { exportPrivateKey, exportPublicKey, generateSigningKeyPair } from '@flotilla/release';
import type { CliIo } from '../../cli-io.ts';
import { usageError } from '../../cli-errors.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { fields } from '../../output.ts';

export function registerGenerate(keys: Command, io: CliIo): void {
  keys
    .command('generate')
    .description('make an ed25519 release-signing key pair on this machine (no server needed)')
    .requiredOption('--out <path>', 'where to write the private key (PKCS#8 PEM, owner-readable only)')
    .option('--force', 'overwrite an existing file')
    .action((opts: { out: string; force?: boolean }, cmd: Command) => withInvocation(io, cmd, (inv) => generate(inv, opts)));
}

async function generate(inv: Invocation, opts: { out: string; force?: boolean }): Promise<void> {
  const pair = generateSigningKeyPair();
  const out = inv.path(opts.out);
  try {
    // 'wx' never overwrites a key someone may still need; 0600 because it is a private key.
    await writeFile(out, exportPrivateKey(pair.privateKey), { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(code === 'EEXIST' ? `${out} already exists (pass --force to overwrite it)` : `cannot write ${out}: ${code ?? String(err)}`);
  }
  const publicKey = exportPublicKey(pair.publicKey, 'raw');
  inv.out.result({ keyId: pair.keyId, publicKey, publicKeyPem: exportPublicKey(pair.publicKey, 'pem'), privateKeyFile: out }, () => [
    ...fields([
      ['private key', `${out} (keep it offline; never upload it)`],
      ['key id', pair.keyId],
      ['public key', publicKey],
    ]),
    '',
    `Ask an admin to trust it: flotilla keys trust ${publicKey} --label <who>`,
  ]);
}
