import { FlotillaError } from '@flotilla/protocol';
import { detachedCopy, parseSignedRelease, type ReleaseManifest } from './manifest-schema.ts';
import { checkSignatures } from './signature-check.ts';
import { manifestDigest } from './signing-payload.ts';
import type { TrustedKeys } from './trusted-keys.ts';

export interface VerifyReleaseOptions {
  trustedKeys: TrustedKeys;
  /** Epoch ms from the caller's clock; injected so expiry is tested with a fake clock. */
  now: number;
  /** Highest releaseCounter already accepted for this model; absent on first install. */
  lastAcceptedCounter?: number;
  /**
   * `manifestDigest` of the manifest accepted at `lastAcceptedCounter`. An equal counter is only
   * accepted when the digest is given and matches: same counter, different content is a forgery.
   */
  lastAcceptedDigest?: string;
  /** Distinct trusted keys that must have signed (default 1). */
  threshold?: number;
  /** What the caller asked for; a manifest for another model or version is refused as mix-and-match. */
  expect?: { model?: string; version?: string };
}

export interface VerifiedRelease {
  manifest: ReleaseManifest;
  /** Content identity to persist next to the counter (see `lastAcceptedDigest`). */
  digest: string;
  /** Trusted keys whose signatures verified, sorted. */
  keyIds: string[];
}

/**
 * Verifies an untrusted signed release. Checks run in this order, each refusal with its own code:
 * schema (MANIFEST_INVALID), signatures (BAD_SIGNATURE / KEY_REVOKED / UNKNOWN_KEY), the expected
 * model and version (MIX_AND_MATCH), expiry (EXPIRED), release counter (ROLLBACK).
 */
export function verifyRelease(envelope: unknown, opts: VerifyReleaseOptions): VerifiedRelease {
  const release = parseSignedRelease(detachedCopy(envelope, 'FLT_RELEASE_MANIFEST_INVALID', 'signed release'));
  const manifest = release.signed;
  const keyIds = checkSignatures('release-manifest', manifest, release.signatures, opts.trustedKeys, opts.now, opts.threshold ?? 1);

  const { expect } = opts;
  if (expect?.model !== undefined && expect.model !== manifest.model) {
    throw new FlotillaError('FLT_RELEASE_MIX_AND_MATCH', `manifest is for model ${manifest.model}, expected ${expect.model}`, {
      model: manifest.model,
      expected: expect.model,
    });
  }
  if (expect?.version !== undefined && expect.version !== manifest.version) {
    throw new FlotillaError('FLT_RELEASE_MIX_AND_MATCH', `manifest is for version ${manifest.version}, expected ${expect.version}`, {
      version: manifest.version,
      expected: expect.version,
    });
  }

  if (opts.now >= manifest.expiresAt) {
    throw new FlotillaError('FLT_RELEASE_EXPIRED', `release ${manifest.model}@${manifest.version} expired at ${new Date(manifest.expiresAt).toISOString()}`, {
      expiresAt: manifest.expiresAt,
      now: opts.now,
    });
  }

  const digest = manifestDigest(manifest);
  const last = opts.lastAcceptedCounter;
  if (last !== undefined) {
    if (manifest.releaseCounter < last) {
      throw new FlotillaError('FLT_RELEASE_ROLLBACK', `release counter ${manifest.releaseCounter} is lower than ${last} already accepted`, {
        releaseCounter: manifest.releaseCounter,
        lastAcceptedCounter: last,
      });
    }
    if (manifest.releaseCounter === last && opts.lastAcceptedDigest !== digest) {
      throw new FlotillaError('FLT_RELEASE_ROLLBACK', `release counter ${last} was already accepted with different content`, {
        releaseCounter: manifest.releaseCounter,
        digest,
        lastAcceptedDigest: opts.lastAcceptedDigest ?? null,
      });
    }
  }
  return { manifest, digest, keyIds };
}
