import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { FlotillaError } from '@flotilla/protocol';
import { createArtifactVerifier, type ArtifactDigest } from './artifact-check.ts';

/**
 * Streams a file through the artifact verifier. A file longer than signed is refused from its size
 * alone, without reading it. Resolves with the digest; rejects with FLT_OTA_LENGTH_MISMATCH or
 * FLT_OTA_HASH_MISMATCH. The read stream is always closed before this settles.
 */
export async function verifyFile(path: string, expected: ArtifactDigest, opts: { signal?: AbortSignal } = {}): Promise<ArtifactDigest> {
  const verifier = createArtifactVerifier(expected);
  const { size } = await stat(path);
  if (size > expected.length) {
    throw new FlotillaError('FLT_OTA_LENGTH_MISMATCH', `artifact is ${size} bytes, manifest says ${expected.length}`, {
      expected: expected.length,
      actual: size,
    });
  }
  // Read at most one byte past the signed length, so a file that grows while we read is still caught.
  const stream = createReadStream(path, { end: expected.length, signal: opts.signal });
  try {
    for await (const chunk of stream) verifier.update(chunk as Buffer);
  } finally {
    stream.destroy();
  }
  return verifier.final();
}
