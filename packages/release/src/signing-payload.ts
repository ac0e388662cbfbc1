import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

/**
 * What a signature is for. The context is part of the signed bytes, so a signature made over a key
 * rotation can never be replayed as a signature over a release manifest, or the other way round.
 */
export type SigningContext = 'release-manifest' | 'key-rotation';

/** Exact bytes an ed25519 signature covers: `flotilla:<context>:v1\n` followed by canonical JSON. */
export function signingPayload(context: SigningContext, value: unknown): Buffer {
  return Buffer.from(`flotilla:${context}:v1\n${canonicalJson(value)}`, 'utf8');
}

/**
 * Content identity of a manifest: hex sha256 of its canonical JSON. Signatures are not part of it,
 * so attaching a second signature does not make the same release look like a different one.
 */
export function manifestDigest(manifest: unknown): string {
  return createHash('sha256').update(canonicalJson(manifest), 'utf8').digest('hex');
}
