import { sign as ed25519Sign } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';
import { parseManifest, parseSignedRelease, type ReleaseManifest, type ReleaseSignature, type SignedRelease } from './manifest-schema.ts';
import { keyIdOf, toPrivateKey, type PrivateKeyInput } from './keys.ts';
import { signingPayload } from './signing-payload.ts';
import { checkSignatures } from './signature-check.ts';
import type { TrustedKeys } from './trusted-keys.ts';

/**
 * Signs a manifest without wrapping it: what an admin produces offline and uploads, so the private
 * key never leaves their machine. Refuses to sign an invalid manifest.
 */
export function signDetached(manifest: ReleaseManifest, privateKey: PrivateKeyInput): ReleaseSignature {
  const valid = parseManifest(manifest);
  const key = toPrivateKey(privateKey);
  const sig = ed25519Sign(null, signingPayload('release-manifest', valid), key);
  return { keyId: keyIdOf(key), sig: sig.toString('base64') };
}

/** Signs a manifest and returns the envelope `{ signed, signatures: [one] }`. */
export function sign(manifest: ReleaseManifest, privateKey: PrivateKeyInput): SignedRelease {
  return { signed: structuredClone(manifest), signatures: [signDetached(manifest, privateKey)] };
}

/**
 * Attaches a detached signature (e.g. uploaded by an admin who signed offline) to a manifest or an
 * envelope. The signature is checked first against `trustedKeys` at `now`, so a server never stores
 * a signature its devices would refuse. A signature under a keyId already present replaces it.
 */
export function attachSignature(
  release: SignedRelease | ReleaseManifest,
  signature: ReleaseSignature,
  trustedKeys: TrustedKeys,
  now: number,
): SignedRelease {
  const envelope: SignedRelease = 'signed' in release
    ? parseSignedRelease(release)
    : { signed: parseManifest(release), signatures: [] };
  const sig = parseSignedRelease({ signed: envelope.signed, signatures: [signature] }).signatures[0]!;
  checkSignatures('release-manifest', envelope.signed, [sig], trustedKeys, now, 1);
  const others = envelope.signatures.filter((s) => s.keyId !== sig.keyId);
  if (others.length >= 16) throw new FlotillaError('FLT_RELEASE_MANIFEST_INVALID', 'a release carries at most 16 signatures');
  return { signed: structuredClone(envelope.signed), signatures: [...others.map((s) => ({ ...s })), { ...sig }] };
}

