import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefixes make a leaked secret recognisable in logs and secret scanners. */
export type SecretKind = 'flta' | 'flte' | 'fltd';

/** 256 random bits, base64url, behind a kind prefix (admin API token, enrollment token, device credential). */
export function newSecret(kind: SecretKind): string {
  return `${kind}_${randomBytes(32).toString('base64url')}`;
}

/**
 * Secrets are high-entropy random strings, so a plain SHA-256 is enough to store them: there is
 * nothing to brute-force that a slow KDF would protect.
 */
export function hashSecret(secret: string | Buffer): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
