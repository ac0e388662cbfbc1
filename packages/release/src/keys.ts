import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** A release signing key pair. `keyId` is the hex sha256 of the 32-byte raw public key. */
export interface SigningKeyPair {
  keyId: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), publicKey, privateKey };
}

function assertEd25519(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`${what} must be an ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  }
}

/** The 32 raw bytes of an ed25519 public key (also accepts the private key and derives it). */
export function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  assertEd25519(pub, 'public key');
  const jwk = pub.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new TypeError('public key has no raw form');
  return Buffer.from(jwk.x, 'base64url');
}

export function keyIdOf(key: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(key)).digest('hex');
}

/** Raw base64 (the form stored in trusted-key sets and rotations) or PEM (SPKI). */
export function exportPublicKey(key: KeyObject, format: 'raw' | 'pem' = 'raw'): string {
  if (format === 'raw') return rawPublicKey(key).toString('base64');
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  assertEd25519(pub, 'public key');
  return pub.export({ format: 'pem', type: 'spki' }).toString();
}

/** Imports a public key from raw base64 (32 bytes) or PEM (SPKI). Refuses anything but ed25519. */
export function importPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  if (trimmed.startsWith('-----BEGIN')) {
    key = createPublicKey({ key: trimmed, format: 'pem' });
  } else {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) throw new TypeError('raw public key must be base64 of 32 bytes');
    const raw = Buffer.from(trimmed, 'base64');
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  }
  assertEd25519(key, 'public key');
  return key;
}

/** PKCS#8 PEM, for the server's online key file or an admin's offline key. */
export function exportPrivateKey(key: KeyObject): string {
  assertEd25519(key, 'private key');
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function importPrivateKey(pem: string): KeyObject {
  const key = createPrivateKey({ key: pem, format: 'pem' });
  assertEd25519(key, 'private key');
  return key;
}

/** Signing functions accept either a KeyObject or a PKCS#8 PEM string. */
export type PrivateKeyInput = KeyObject | string;

export function toPrivateKey(input: PrivateKeyInput): KeyObject {
  if (typeof input === 'string') return importPrivateKey(input);
  if (input.type !== 'private') throw new TypeError('a private key is required to sign');
  assertEd25519(input, 'private key');
  return input;
}
