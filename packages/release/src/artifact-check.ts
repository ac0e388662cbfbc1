import { createHash } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';
import type { ReleaseManifest } from './manifest-schema.ts';
import { manifestDigest } from './signing-payload.ts';

/** What one downloaded file must be, taken from a verified manifest. */
export interface ExpectedArtifact {
  model: string;
  version: string;
  releaseCounter: number;
  variantId: string;
  name: string;
  sha256: string;
  length: number;
}

/** What a file turned out to be. */
export interface ArtifactDigest {
  sha256: string;
  length: number;
}

/**
 * What the device was told to fetch (e.g. a download instruction from the server). Every field
 * given must agree with the verified manifest; an instruction naming another release's file is
 * a mix-and-match attempt even before any byte is downloaded.
 */
export interface ArtifactClaim {
  model?: string;
  version?: string;
  releaseCounter?: number;
  manifestDigest?: string;
  name?: string;
  sha256?: string;
  length?: number;
}

function mixAndMatch(message: string, details: Record<string, unknown>): never {
  throw new FlotillaError('FLT_RELEASE_MIX_AND_MATCH', message, details);
}

/** Looks up a variant's file in a verified manifest; FLT_RELEASE_MIX_AND_MATCH when it is not there or the claim disagrees. */
export function expectedArtifact(manifest: ReleaseManifest, variantId: string, claim: ArtifactClaim = {}): ExpectedArtifact {
  const variant = manifest.variants.find((v) => v.id === variantId);
  if (!variant) {
    mixAndMatch(`variant ${variantId} is not part of ${manifest.model}@${manifest.version}`, {
      variantId,
      model: manifest.model,
      version: manifest.version,
    });
  }
  const expected: ExpectedArtifact = {
    model: manifest.model,
    version: manifest.version,
    releaseCounter: manifest.releaseCounter,
    variantId,
    name: variant.file.name,
    sha256: variant.file.sha256,
    length: variant.file.length,
  };
  const disagreements: string[] = [];
  for (const field of ['model', 'version', 'releaseCounter', 'name', 'sha256', 'length'] as const) {
    const claimed = claim[field];
    if (claimed !== undefined && claimed !== expected[field]) disagreements.push(field);
  }
  if (claim.manifestDigest !== undefined && claim.manifestDigest !== manifestDigest(manifest)) disagreements.push('manifestDigest');
  if (disagreements.length > 0) {
    mixAndMatch(`download instruction for ${variantId} does not match ${manifest.model}@${manifest.version}: ${disagreements.join(', ')}`, {
      variantId,
      fields: disagreements,
    });
  }
  return expected;
}

export interface VerifyArtifactOptions {
  /** Other verified manifests the device knows (e.g. the installed one), to name where stray bytes came from. */
  otherManifests?: readonly ReleaseManifest[];
}

/**
 * Checks a file's measured digest against variant `variantId` of a verified manifest. Refusals:
 * the variant is not in the manifest, or the bytes are another variant's or another known
 * release's file (FLT_RELEASE_MIX_AND_MATCH); a wrong length (FLT_OTA_LENGTH_MISMATCH); a wrong
 * sha256 (FLT_OTA_HASH_MISMATCH).
 */
export function verifyArtifact(manifest: ReleaseManifest, variantId: string, actual: ArtifactDigest, opts: VerifyArtifactOptions = {}): ExpectedArtifact {
  const expected = expectedArtifact(manifest, variantId);
  if (actual.sha256 === expected.sha256 && actual.length === expected.length) return expected;

  for (const other of [manifest, ...(opts.otherManifests ?? [])]) {
    const owner = other.variants.find((v) => v.file.sha256 === actual.sha256 && v.file.length === actual.length);
    if (owner) {
      mixAndMatch(`file for ${variantId} holds the bytes of ${other.model}@${other.version} variant ${owner.id}`, {
        variantId,
        actualOwner: { model: other.model, version: other.version, variantId: owner.id },
      });
    }
  }
  checkArtifactDigest(expected, actual);
  return expected;
}

/**
 * Compares a measured digest with the signed one: FLT_OTA_LENGTH_MISMATCH or FLT_OTA_HASH_MISMATCH.
 * Length first: a different length explains a different hash, and is the more useful message.
 */
export function checkArtifactDigest(expected: ArtifactDigest, actual: ArtifactDigest): void {
  if (actual.length !== expected.length) {
    throw new FlotillaError('FLT_OTA_LENGTH_MISMATCH', `artifact is ${actual.length} bytes, manifest says ${expected.length}`, {
      expected: expected.length,
      actual: actual.length,
    });
  }
  if (actual.sha256 !== expected.sha256) {
    throw new FlotillaError('FLT_OTA_HASH_MISMATCH', `artifact sha256 ${actual.sha256} differs from manifest ${expected.sha256}`, {
      expected: expected.sha256,
      actual: actual.sha256,
    });
  }
}

export interface ArtifactVerifier {
  /** Hashes a chunk. Throws FLT_OTA_LENGTH_MISMATCH as soon as more bytes than signed arrive, before hashing them. */
  update(chunk: Uint8Array): void;
  /** Ends the stream: throws FLT_OTA_LENGTH_MISMATCH if short, FLT_OTA_HASH_MISMATCH if the bytes differ. */
  final(): ArtifactDigest;
  readonly bytesReceived: number;
  /** Bytes still allowed: a download can cap its Range request or body reader at this. */
  readonly remaining: number;
}

/**
 * Streaming check for one artifact. It enforces the signed length as bytes arrive so a download
 * that runs long is aborted at the first extra byte, not after filling the disk. After a refusal
 * or `final()` it refuses further use.
 */
export function createArtifactVerifier(expected: ArtifactDigest): ArtifactVerifier {
  if (!Number.isSafeInteger(expected.length) || expected.length < 0 || !/^[0-9a-f]{64}$/.test(expected.sha256)) {
    throw new TypeError('expected artifact needs a lowercase hex sha256 and a non-negative integer length');
  }
  const hash = createHash('sha256');
  let received = 0;
  let state: 'open' | 'done' | 'failed' = 'open';

  const ensureOpen = (): void => {
    if (state !== 'open') throw new TypeError(`artifact verifier is ${state === 'done' ? 'finished' : 'failed'}`);
  };

  return {
    update(chunk) {
      ensureOpen();
      if (received + chunk.byteLength > expected.length) {
        state = 'failed';
        throw new FlotillaError('FLT_OTA_LENGTH_MISMATCH', `artifact exceeds its signed length of ${expected.length} bytes`, {
          expected: expected.length,
          atLeast: received + chunk.byteLength,
        });
      }
      received += chunk.byteLength;
      hash.update(chunk);
    },
    final() {
      ensureOpen();
      const actual = { sha256: hash.digest('hex'), length: received };
      try {
        checkArtifactDigest(expected, actual);
      } catch (err) {
        state = 'failed';
        throw err;
      }
      state = 'done';
      return actual;
    },
    get bytesReceived() {
      return received;
    },
    get remaining() {
      return expected.length - received;
    },
  };
}
