import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { FlotillaError } from '@flotilla/protocol';
import { S3ArtifactStore, type S3StoreOptions } from '../../src/artifacts/s3-store.ts';
import { MiB, cutOff, sha } from './upload-streams.ts';
import { ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, startLocalS3, type LocalS3 } from './local-s3.ts';

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlotillaError);
  expect((err as FlotillaError).code).toBe(code);
}

describe('S3 artifact store against a local S3-compatible server', () => {
  let s3: LocalS3;
  const stores: S3ArtifactStore[] = [];
  const open = async (extra: Partial<S3StoreOptions> = {}) => {
    const store = await S3ArtifactStore.create({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: BUCKET,
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
      forcePathStyle: true,
      prefix: 'fleet-a',
      downloads: 'redirect',
      presignTtlSec: 300,
      maxArtifactBytes: 32 * MiB,
      partSizeBytes: 5 * MiB,
      ...extra,
    });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await s3?.close();
  });

  it('stores an upload under its measured sha256 and reads it back whole and by byte range', async () => {
    const store = await open();
    const bytes = randomBytes(300 * 1024);
    const stored = await store.put(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { maxBytes: MiB, expectedLength: bytes.length });
    expect(stored).toEqual({ sha256: sha(bytes), length: bytes.length });
    expect(await store.stat(stored.sha256)).toEqual(stored);
    expect(await s3.keys()).toContain(`fleet-a/sha256/${stored.sha256}`);
    const whole = await store.open(stored.sha256);
    expect(Buffer.concat(await whole!.toArray())).toEqual(bytes);
    const part = await store.open(stored.sha256, { start: 1000, end: 1999 });
    expect(Buffer.concat(await part!.toArray())).toEqual(bytes.subarray(1000, 2000));
    expect(await store.open('0'.repeat(64))).toBeNull();
    expect(await store.stat('0'.repeat(64))).toBeNull();
  });

  it('streams an upload larger than one part through a multipart upload and leaves no temporary key', async () => {
    const store = await open();
    const bytes = randomBytes(11 * MiB + 123);
    const chunks = Array.from({ length: Math.ceil(bytes.length / (256 * 1024)) }, (_, i) => bytes.subarray(i * 256 * 1024, (i + 1) * 256 * 1024));
    const stored = await store.put(Readable.from(chunks), { maxBytes: 32 * MiB });
    expect(stored).toEqual({ sha256: sha(bytes), length: bytes.length });
    const got = Buffer.concat(await (await store.open(stored.sha256))!.toArray());
    expect(sha(got)).toBe(stored.sha256);
    expect((await s3.keys()).filter((k) => k.includes('/tmp/'))).toEqual([]);
    expect(await store.delete(stored.sha256)).toBe(true);
    expect(await store.delete(stored.sha256)).toBe(false);
  });

  it('stores the same artifact uploaded twice once', async () => {
    const store = await open({ prefix: 'dedupe/' });
    const bytes = randomBytes(4096);
    const first = await store.put(Readable.from([bytes]), { maxBytes: MiB });
    const second = await store.put(Readable.from([bytes]), { maxBytes: MiB });
    expect(second).toEqual(first);
    expect((await s3.keys()).filter((k) => k.startsWith('dedupe/'))).toEqual([`dedupe/sha256/${first.sha256}`]);
  });

  it('leaves nothing under the final key, nor a temporary key, when the sender is cut off mid-upload', async () => {
    const store = await open({ prefix: 'cut/' });
    const bytes = randomBytes(6 * MiB);
    await expectCode(store.put(cutOff(bytes), { maxBytes: 32 * MiB, expectedLength: 8 * MiB }), 'FLT_ARTIFACT_INCOMPLETE');
    expect(await store.stat(sha(bytes))).toBeNull();
    expect((await s3.keys()).filter((k) => k.startsWith('cut/'))).toEqual([]);
  });

  it('refuses fewer bytes than announced, an oversize upload and an empty one, keeping nothing of any', async () => {
    const store = await open({ prefix: 'refused/' });
    const short = randomBytes(1000);
    await expectCode(store.put(Readable.from([short]), { maxBytes: MiB, expectedLength: 2000 }), 'FLT_ARTIFACT_INCOMPLETE');
    const big = randomBytes(2 * MiB);
    await expectCode(store.put(Readable.from([big.subarray(0, MiB), big.subarray(MiB)]), { maxBytes: MiB }), 'FLT_ARTIFACT_TOO_LARGE');
    await expectCode(store.put(Readable.from([]), { maxBytes: MiB }), 'FLT_BAD_REQUEST');
    expect(await store.stat(sha(short))).toBeNull();
    expect((await s3.keys()).filter((k) => k.startsWith('refused/'))).toEqual([]);
  });

  it('refuses to start with a wrong secret or a missing bucket', async () => {
    await expectCode(open({ secretAccessKey: 'not-the-secret' }), 'FLT_CONFIG_INVALID');
    expect(s3.gate.refusals.at(-1)?.code).toBe('SignatureDoesNotMatch');
    await expectCode(open({ bucket: 'no-such-bucket' }), 'FLT_CONFIG_INVALID');
  });

  describe('presigned download URLs', () => {
    let bytes: Buffer;
    let digest: string;
    beforeAll(async () => {
      const store = await open({ prefix: 'presign/' });
      bytes = randomBytes(64 * 1024);
      digest = (await store.put(Readable.from([bytes]), { maxBytes: MiB })).sha256;
    });

    it('serves the blob, and a byte range of it, until the URL expires', async () => {
      const store = await open({ prefix: 'presign/' });
      const url = (await store.downloadUrl(digest))!;
      expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('300');
      const res = await request(url, { headers: { range: 'bytes=100-199' } });
      expect(res.statusCode).toBe(206);
      expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    });

    it('refuses a URL whose lifetime has passed', async () => {
      // Signed 301 s ago with a 300 s lifetime: expired by one second on the store's own clock.
      const store = await open({ prefix: 'presign/', now: () => Date.now() - 301_000 });
      const res = await request((await store.downloadUrl(digest))!);
      expect(res.statusCode).toBe(403);
      expect(await res.body.text()).toContain('expired');
    });

    it('refuses a URL whose key, lifetime or signature was altered', async () => {
      const store = await open({ prefix: 'presign/' });
      const url = new URL((await store.downloadUrl(digest))!);
      const other = await open({ prefix: 'presign/' });
      const otherDigest = (await other.put(Readable.from([randomBytes(100)]), { maxBytes: MiB })).sha256;

      const otherKey = new URL(url);
      otherKey.pathname = otherKey.pathname.replace(digest, otherDigest);
      const longer = new URL(url);
      longer.searchParams.set('X-Amz-Expires', '604800');
      const forged = new URL(url);
      const sig = forged.searchParams.get('X-Amz-Signature')!;
      forged.searchParams.set('X-Amz-Signature', `${sig[0] === '0' ? '1' : '0'}${sig.slice(1)}`);

      for (const tampered of [otherKey, longer, forged]) {
        const res = await request(tampered);
        expect(res.statusCode).toBe(403);
        expect(await text(res.body)).toContain('SignatureDoesNotMatch');
      }
    });

    it('gives no URL in proxy mode', async () => {
      const store = await open({ prefix: 'presign/', downloads: 'proxy' });
      expect(await store.downloadUrl(digest)).toBeNull();
    });
  });
});
