import { verify } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';
import type { ReleaseSignature } from './manifest-schema.ts';
import type { KeyStatus, TrustedKeys } from './trusted-keys.ts';
import { signingPayload, type SigningContext } from './signing-payload.ts';

export type SignatureOutcome = { keyId: string; outcome: 'valid' | 'bad-signature' | Exclude<KeyStatus, 'trusted'> };

/** Verifies one raw signature; a malformed signature is simply not valid. */
export function signatureMatches(payload: Buffer, sig: ReleaseSignature, trustedKeys: TrustedKeys): boolean {
  const key = trustedKeys.publicKey(sig.keyId);
  if (!key) return false;
  try {
    return verify(null, payload, key, Buffer.from(sig.sig, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Requires signatures from at least `threshold` distinct keys that are trusted at `now`. Several
 * signatures under one keyId count once, so one key cannot meet a threshold on its own. When the
 * threshold is not met the code says why, most specific first: a signature that does not verify
 * under a trusted key (BAD_SIGNATURE), then a retired or out-of-window key (KEY_REVOKED), then
 * no trusted key at all (UNKNOWN_KEY).
 */
export function checkSignatures(
  context: SigningContext,
  signed: unknown,
  signatures: readonly ReleaseSignature[],
  trustedKeys: TrustedKeys,
  now: number,
  threshold: number,
): string[] {
  if (!Number.isInteger(threshold) || threshold < 1) throw new TypeError('threshold must be an integer >= 1');
  const payload = signingPayload(context, signed);
  const valid = new Set<string>();
  const outcomes: SignatureOutcome[] = [];
  for (const sig of signatures) {
    const status = trustedKeys.status(sig.keyId, now);
    if (status !== 'trusted') {
      outcomes.push({ keyId: sig.keyId, outcome: status });
      continue;
    }
    const ok = signatureMatches(payload, sig, trustedKeys);
    outcomes.push({ keyId: sig.keyId, outcome: ok ? 'valid' : 'bad-signature' });
    if (ok) valid.add(sig.keyId);
  }
  if (valid.size >= threshold) return [...valid].sort();

  const details = { threshold, validKeys: valid.size, signatures: outcomes };
  const what = context === 'release-manifest' ? 'release' : 'key rotation';
  if (outcomes.some((o) => o.outcome === 'bad-signature')) {
    throw new FlotillaError('FLT_RELEASE_BAD_SIGNATURE', `${what} signature does not verify`, details);
  }
  if (outcomes.some((o) => o.outcome === 'revoked' || o.outcome === 'expired' || o.outcome === 'not-yet-valid')) {
    throw new FlotillaError('FLT_RELEASE_KEY_REVOKED', `${what} is signed by a retired, revoked or not currently valid key`, details);
  }
  if (valid.size > 0) {
    throw new FlotillaError('FLT_RELEASE_UNKNOWN_KEY', `${what} has ${valid.size} trusted signature(s), ${threshold} required`, details);
  }
  throw new FlotillaError('FLT_RELEASE_UNKNOWN_KEY', `${what} is not signed by any trusted key`, details);
}
