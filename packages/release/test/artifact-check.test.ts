import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { createArtifactVerifier, expectedArtifact, manifestDigest, verifyArtifact, verifyFile } from '../src/index.ts';
import { makeRelease, sha256 } from './release-fixtures.ts';

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
  return undefined;
}
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
  return undefined;
}

const digestOf = (bytes: Buffer) => ({ sha256: sha256(bytes), length: bytes.length });

const { manifest, files } = makeRelease();
const release2 = makeRelease({ version: '1.3.0', releaseCounter: 6 });
const int8 = files.get('cpu-int8')!;
const expected = expectedArtifact(manifest, 'cpu-int8');

/** Feeds bytes to a fresh verifier in uneven chunks, as a download would. */
function stream(bytes: Buffer, chunk = 97): ReturnType<typeof createArtifactVerifier> {
  const verifier = createArtifactVerifier(expected);
  for (let i = 0; i < bytes.length; i += chunk) verifier.update(bytes.subarray(i, i + chunk));
  return verifier;
}

describe('artifact checks accept', () => {
  it('the exact bytes of the variant, streamed in chunks', () => {
    expect(stream(int8).final()).toEqual(digestOf(int8));
    expect(verifyArtifact(manifest, 'cpu-int8', digestOf(int8))).toEqual(expected);
  });

  it('a download instruction that agrees with the manifest in every field', () => {
    const claim = { model: 'digits', version: '1.2.0', releaseCounter: 5, manifestDigest: manifestDigest(manifest), ...manifest.variants[3]!.file };
    expect(expectedArtifact(manifest, 'cpu-int8', claim)).toEqual(expected);
  });
});

describe('artifact checks refuse', () => {
  it('a file with one flipped byte (FLT_OTA_HASH_MISMATCH)', () => {
    const bad = Buffer.from(int8);
    bad[int8.length >> 1] = bad[int8.length >> 1]! ^ 0xff;
    expect(codeOf(() => stream(bad).final())).toBe('FLT_OTA_HASH_MISMATCH');
    expect(codeOf(() => verifyArtifact(manifest, 'cpu-int8', digestOf(bad)))).toBe('FLT_OTA_HASH_MISMATCH');
  });

  it('a truncated file (FLT_OTA_LENGTH_MISMATCH)', () => {
    const short = int8.subarray(0, int8.length - 1);
    expect(codeOf(() => stream(short).final())).toBe('FLT_OTA_LENGTH_MISMATCH');
    expect(codeOf(() => verifyArtifact(manifest, 'cpu-int8', digestOf(short)))).toBe('FLT_OTA_LENGTH_MISMATCH');
  });

  it('an extended file at the first byte past the signed length, before final', () => {
    const verifier = createArtifactVerifier(expected);
    verifier.update(int8);
    expect(verifier.remaining).toBe(0);
    expect(codeOf(() => verifier.update(Buffer.from([0])))).toBe('FLT_OTA_LENGTH_MISMATCH');
    expect(verifier.bytesReceived).toBe(int8.length);
    // A failed verifier cannot be finished into a success.
    expect(() => verifier.final()).toThrow(/failed/);
  });

  it('an oversized chunk that straddles the signed length', () => {
    const verifier = createArtifactVerifier(expected);
    verifier.update(int8.subarray(0, 10));
    expect(codeOf(() => verifier.update(Buffer.concat([int8.subarray(10), Buffer.from('tail')])))).toBe('FLT_OTA_LENGTH_MISMATCH');
  });

  it('the bytes of another variant of the same release (FLT_RELEASE_MIX_AND_MATCH)', () => {
    expect(codeOf(() => verifyArtifact(manifest, 'cpu-int8', digestOf(files.get('cpu-fp32')!)))).toBe('FLT_RELEASE_MIX_AND_MATCH');
  });

  it('the bytes of the same variant from another known release (FLT_RELEASE_MIX_AND_MATCH)', () => {
    const other = digestOf(release2.files.get('cpu-int8')!);
    expect(codeOf(() => verifyArtifact(manifest, 'cpu-int8', other, { otherManifests: [release2.manifest] }))).toBe('FLT_RELEASE_MIX_AND_MATCH');
    // Without knowing the other release the same bytes are still refused, as a plain hash mismatch.
    expect(codeOf(() => verifyArtifact(manifest, 'cpu-int8', other))).toBe('FLT_OTA_HASH_MISMATCH');
  });

  it('a download instruction for variant X of this release carrying another release entry (FLT_RELEASE_MIX_AND_MATCH)', () => {
    const foreign = release2.manifest.variants.find((v) => v.id === 'cpu-int8')!.file;
    expect(codeOf(() => expectedArtifact(manifest, 'cpu-int8', { ...foreign }))).toBe('FLT_RELEASE_MIX_AND_MATCH');
    expect(codeOf(() => expectedArtifact(manifest, 'cpu-int8', { version: '1.3.0' }))).toBe('FLT_RELEASE_MIX_AND_MATCH');
    expect(codeOf(() => expectedArtifact(manifest, 'cpu-int8', { manifestDigest: manifestDigest(release2.manifest) }))).toBe('FLT_RELEASE_MIX_AND_MATCH');
  });

  it('a variant id that is not in this manifest (FLT_RELEASE_MIX_AND_MATCH)', () => {
    expect(codeOf(() => expectedArtifact(manifest, 'rpi-int8'))).toBe('FLT_RELEASE_MIX_AND_MATCH');
    expect(codeOf(() => verifyArtifact(manifest, 'rpi-int8', digestOf(int8)))).toBe('FLT_RELEASE_MIX_AND_MATCH');
  });
});

describe('verifyFile', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  async function fileWith(bytes: Buffer): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-release-'));
    dirs.push(dir);
    const path = join(dir, 'model.onnx');
    await writeFile(path, bytes);
    return path;
  }

  it('resolves with the digest of a file that matches', async () => {
    expect(await verifyFile(await fileWith(int8), expected)).toEqual(digestOf(int8));
  });

  it('refuses a file longer than signed from its size alone, reporting the full size', async () => {
    const path = await fileWith(Buffer.concat([int8, Buffer.alloc(5000)]));
    const err = await verifyFile(path, expected).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe('FLT_OTA_LENGTH_MISMATCH');
    expect((err as FlotillaError).details).toEqual({ expected: int8.length, actual: int8.length + 5000 });
    expect((err as FlotillaError).message).toBe(`artifact is ${int8.length + 5000} bytes, manifest says ${int8.length}`);
  });

  it('refuses a flipped byte, a truncated file and an extended file', async () => {
    const flipped = Buffer.from(int8);
    flipped[0] = flipped[0]! ^ 1;
    expect(await codeOfAsync(async () => verifyFile(await fileWith(flipped), expected))).toBe('FLT_OTA_HASH_MISMATCH');
    expect(await codeOfAsync(async () => verifyFile(await fileWith(int8.subarray(1)), expected))).toBe('FLT_OTA_LENGTH_MISMATCH');
    expect(await codeOfAsync(async () => verifyFile(await fileWith(Buffer.concat([int8, Buffer.from([0])])), expected))).toBe('FLT_OTA_LENGTH_MISMATCH');
  });

  it('stops reading when its caller aborts', async () => {
    const path = await fileWith(int8);
    const err = await verifyFile(path, expected, { signal: AbortSignal.abort() }).then(() => null, (e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
  });
});

describe('the streaming artifact verifier', () => {
  it.each([
    ['a negative length', { sha256: 'a'.repeat(64), length: -1 }],
    ['a fractional length', { sha256: 'a'.repeat(64), length: 1.5 }],
    ['an unsafe length', { sha256: 'a'.repeat(64), length: 2 ** 53 }],
    ['an uppercase sha256', { sha256: 'A'.repeat(64), length: 1 }],
    ['a short sha256', { sha256: 'a'.repeat(63), length: 1 }],
    ['a sha256 with a prefix', { sha256: `x${'a'.repeat(64)}`, length: 1 }],
    ['a sha256 with a suffix', { sha256: `${'a'.repeat(64)}x`, length: 1 }],
  ])('cannot be built from %s', (_what, digest) => {
    expect(() => createArtifactVerifier(digest)).toThrow(TypeError);
  });

  it('accepts an empty artifact signed as empty', () => {
    const empty = Buffer.alloc(0);
    expect(createArtifactVerifier(digestOf(empty)).final()).toEqual(digestOf(empty));
  });

  it('counts the bytes still allowed as they arrive', () => {
    const verifier = createArtifactVerifier(expected);
    expect(verifier.remaining).toBe(int8.length);
    verifier.update(int8.subarray(0, 10));
    expect(verifier.bytesReceived).toBe(10);
    expect(verifier.remaining).toBe(int8.length - 10);
  });

  it('refuses more bytes, or a second final, once it has vouched for a file', () => {
    const verifier = stream(int8);
    verifier.final();
    expect(() => verifier.update(Buffer.alloc(0))).toThrow('artifact verifier is finished');
    expect(() => verifier.final()).toThrow('artifact verifier is finished');
  });

  it('cannot be finished into a success after a hash mismatch', () => {
    const bad = Buffer.from(int8);
    bad[0] = bad[0]! ^ 1;
    const verifier = stream(bad);
    expect(codeOf(() => verifier.final())).toBe('FLT_OTA_HASH_MISMATCH');
    expect(() => verifier.final()).toThrow('artifact verifier is failed');
  });

  it('reports the signed and the measured size and hash when it refuses', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as FlotillaError;
      }
      throw new Error('expected a refusal');
    };
    const long = err(() => createArtifactVerifier(expected).update(Buffer.concat([int8, Buffer.from('x')])));
    expect(long.details).toEqual({ expected: int8.length, atLeast: int8.length + 1 });
    const short = err(() => verifyArtifact(manifest, 'cpu-int8', { sha256: expected.sha256, length: 3 }));
    expect(short.details).toEqual({ expected: int8.length, actual: 3 });
    const wrong = err(() => verifyArtifact(manifest, 'cpu-int8', { sha256: 'b'.repeat(64), length: int8.length }));
    expect(wrong.code).toBe('FLT_OTA_HASH_MISMATCH');
    expect(wrong.details).toEqual({ expected: expected.sha256, actual: 'b'.repeat(64) });
  });

  it('names the release and variant whose bytes were delivered instead', () => {
    try {
      verifyArtifact(manifest, 'cpu-int8', digestOf(release2.files.get('cpu-int8')!), { otherManifests: [release2.manifest] });
      expect.unreachable();
    } catch (e) {
      expect((e as FlotillaError).details).toEqual({ variantId: 'cpu-int8', actualOwner: { model: 'digits', version: '1.3.0', variantId: 'cpu-int8' } });
    }
  });

  it('lists every field of a download instruction that disagrees with the manifest', () => {
    try {
      expectedArtifact(manifest, 'cpu-int8', { model: 'faces', releaseCounter: 6, length: 1, manifestDigest: 'f'.repeat(64) });
      expect.unreachable();
    } catch (e) {
      expect((e as FlotillaError).details).toEqual({ variantId: 'cpu-int8', fields: ['model', 'releaseCounter', 'length', 'manifestDigest'] });
    }
  });
});

describe('artifact refusals say what was wrong', () => {
  it('in every message, naming the variant, the release and the sizes or hashes involved', () => {
    const other = digestOf(release2.files.get('cpu-int8')!);
    expect(() => expectedArtifact(manifest, 'rpi-int8')).toThrow('variant rpi-int8 is not part of digits@1.2.0');
    expect(() => expectedArtifact(manifest, 'rpi-int8')).toThrow(expect.objectContaining({ details: { variantId: 'rpi-int8', model: 'digits', version: '1.2.0' } }));
    expect(() => expectedArtifact(manifest, 'cpu-int8', { model: 'faces', version: '9' })).toThrow('download instruction for cpu-int8 does not match digits@1.2.0: model, version');
    expect(() => verifyArtifact(manifest, 'cpu-int8', other, { otherManifests: [release2.manifest] })).toThrow('file for cpu-int8 holds the bytes of digits@1.3.0 variant cpu-int8');
    expect(() => verifyArtifact(manifest, 'cpu-int8', { sha256: expected.sha256, length: 3 })).toThrow(`artifact is 3 bytes, manifest says ${int8.length}`);
    expect(() => verifyArtifact(manifest, 'cpu-int8', { sha256: 'b'.repeat(64), length: int8.length })).toThrow(`artifact sha256 ${'b'.repeat(64)} differs from manifest ${expected.sha256}`);
    expect(() => createArtifactVerifier(expected).update(Buffer.concat([int8, Buffer.from('x')]))).toThrow(`artifact exceeds its signed length of ${int8.length} bytes`);
    expect(() => createArtifactVerifier({ sha256: 'x', length: 1 })).toThrow('expected artifact needs a lowercase hex sha256 and a non-negative integer length');
  });
});
