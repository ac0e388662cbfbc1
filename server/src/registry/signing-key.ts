import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { exportPrivateKey, generateSigningKeyPair, importPrivateKey, keyIdOf } from '@flotilla/release';

export interface ServerSigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  path: string;
}

export function signingKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'release-signing.pem');
}

/**
 * The server's online release-signing key: `<dataDir>/keys/release-signing.pem` (PKCS#8, 0600 in a
 * 0700 folder). Generated on first start; written to a temp file and renamed so a crash can never
 * leave a half-written key that would be regenerated (and silently change the server's identity).
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<ServerSigningKey> {
  const path = signingKeyPath(dataDir);
  let pem: string | null = null;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem === null) {
    await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
    const pair = generateSigningKeyPair();
    pem = exportPrivateKey(pair.privateKey);
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  const privateKey = importPrivateKey(pem);
  return { keyId: keyIdOf(privateKey), privateKey, publicKey: createPublicKey(privateKey), path };
}
