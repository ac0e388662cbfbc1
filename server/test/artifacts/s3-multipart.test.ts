import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { S3ArtifactStore, type S3StoreOptions } from '../../src/artifacts/s3-store.ts';
import { MiB, chunked, cutOff, sha } from './upload-streams.ts';
import { ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, startLocalS3, type LocalS3 } from './local-s3.ts';
import { partCopyDouble } from './part-copy-double.ts';

// The 5 GiB limits of a single PUT and a single CopyObject, lowered to a few MiB so that the
// multipart paths run against the local S3 server in seconds.
describe('S3 artifact store past the single-request limits (thresholds lowered)', () => {
  let s3: LocalS3;
  const stores: S3ArtifactStore[] = [];
  const open = async (prefix: string, extra: Partial<S3StoreOptions> = {}) => {
    const store = await S3ArtifactStore.create({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: BUCKET,
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
      forcePathStyle: true,
      prefix,
      downloads: 'proxy',
      presignTtlSec: 300,
      maxArtifactBytes: 64 * MiB,
      partSizeBytes: 5 * MiB,
      singleCopyLimitBytes: 6 * MiB,
      ...extra,
    });
    stores.push(store);
    return store;
  };
  const keysUnder = async (prefix: string) => (await s3.keys()).filter((k) => k.startsWith(prefix));

  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await s3?.close();
  });

  it('stores an upload above the copy threshold through a multipart upload and a part-by-part copy, downloadable byte-identical', async () => {
    const double = partCopyDouble();
    const store = await open('big/', { configureClient: double.install });
    const bytes = randomBytes(13 * MiB + 77);
    const stored = await store.put(chunked(bytes), { maxBytes: 64 * MiB, expectedLength: bytes.length });
    expect(stored).toEqual({ sha256: sha(bytes), length: bytes.length });
    // Three parts of at most 5 MiB, the last one short, each copied by its exact range.
    expect(double.calls).toEqual([`copy-part 1 bytes=0-${5 * MiB - 1}`, `copy-part 2 bytes=${5 * MiB}-${10 * MiB - 1}`, `copy-part 3 bytes=${10 * MiB}-${bytes.length - 1}`]);
    const back = Buffer.concat(await (await store.open(stored.sha256))!.toArray());
    expect(back.equals(bytes)).toBe(true);
    const tail = Buffer.concat(await (await store.open(stored.sha256, { start: 10 * MiB - 3, end: 10 * MiB + 2 }))!.toArray());
    expect(tail.equals(bytes.subarray(10 * MiB - 3, 10 * MiB + 3))).toBe(true);
    expect(await keysUnder('big/')).toEqual([`big/sha256/${stored.sha256}`]);
  });

  it('aborts the multipart copy when a part fails, leaving neither the content address nor the staged upload', async () => {
    const double = partCopyDouble({ failPart: 2 });
    const store = await open('copyfail/', { configureClient: double.install });
    const bytes = randomBytes(12 * MiB);
    const err = await store.put(chunked(bytes), { maxBytes: 64 * MiB }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(double.calls.slice(0, 2)).toEqual([`copy-part 1 bytes=0-${5 * MiB - 1}`, `copy-part 2 bytes=${5 * MiB}-${10 * MiB - 1}`]);
    expect(double.calls).toHaveLength(3);
    expect(double.calls[2]).toMatch(new RegExp(`^abort copyfail/sha256/${sha(bytes)} \\S+$`));
    expect(await store.stat(sha(bytes))).toBeNull();
    expect(await keysUnder('copyfail/')).toEqual([]);
  });

  it('aborts the multipart upload when the sender is cut off after several parts, and keeps nothing', async () => {
    const double = partCopyDouble();
    const store = await open('cutbig/', { configureClient: double.install });
    const bytes = randomBytes(12 * MiB);
    const err = await store.put(cutOff(bytes), { maxBytes: 64 * MiB, expectedLength: 20 * MiB }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe('FLT_ARTIFACT_INCOMPLETE');
    // Every multipart upload begun for the staged key is aborted (the cut can land before the
    // first part is full, when none was begun yet).
    const begun = double.creates.filter((k) => k.startsWith('cutbig/tmp/upload-'));
    expect(begun.length).toBeLessThanOrEqual(1);
    expect([...new Set(double.calls.filter((c) => c.startsWith('abort cutbig/tmp/upload-')).map((c) => c.split(' ')[1]))]).toEqual(begun);
    expect(double.calls.filter((c) => c.startsWith('copy-part'))).toEqual([]);
    expect(await store.stat(sha(bytes))).toBeNull();
    expect(await keysUnder('cutbig/')).toEqual([]);
  });

  it('sizes the parts so that the largest allowed artifact fits in 10,000 parts', async () => {
    const double = partCopyDouble();
    // 60 MiB allowed with at most 10,000 parts would fit 5 MiB parts; 100 GiB needs parts above 10 MiB.
    const store = await open('sizing/', { configureClient: double.install, maxArtifactBytes: 100 * 1024 * MiB, singleCopyLimitBytes: 5 * MiB });
    const bytes = randomBytes(12 * MiB);
    await store.put(chunked(bytes), { maxBytes: 64 * MiB });
    const partSize = Math.ceil((100 * 1024 * MiB) / 10_000);
    expect(double.calls).toEqual([`copy-part 1 bytes=0-${partSize - 1}`, `copy-part 2 bytes=${partSize}-${bytes.length - 1}`]);
  });
});
