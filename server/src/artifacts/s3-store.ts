import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { FlotillaError } from '@flotilla/protocol';
import type { ArtifactStore, ByteRange, PutOptions, StoredArtifact } from './artifact-store.ts';
import { MeasuringStream } from './measuring-stream.ts';

const SHA256 = /^[0-9a-f]{64}$/;
const MiB = 1024 * 1024;
/** S3 refuses a single CopyObject above 5 GiB; larger blobs are copied part by part. */
const SINGLE_COPY_LIMIT = 5 * 1024 * MiB;
/** S3 allows at most 10,000 parts per multipart upload. */
const MAX_PARTS = 10_000;

export interface S3StoreOptions {
  /** `https://s3.eu-west-1.amazonaws.com`, `http://minio.internal:9000`, … */
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, Ceph, most self-hosted stores). */
  forcePathStyle: boolean;
  /** Key prefix under which this server keeps its blobs (`flotilla/`); empty for the bucket root. */
  prefix: string;
  /** `redirect`: devices get a presigned GET URL; `proxy`: the server streams from the bucket. */
  downloads: 'proxy' | 'redirect';
  /** Lifetime of a presigned download URL. */
  presignTtlSec: number;
  /** Largest artifact the registry accepts; sizes the multipart parts so any allowed upload fits in 10,000 parts. */
  maxArtifactBytes: number;
  /** Signing clock for presigned URLs (tests pass a fixed one). */
  now?: () => number;
  /** Multipart part size; at least 5 MiB (S3's minimum), raised when `maxArtifactBytes` needs it. */
  partSizeBytes?: number;
  /** Above this size the final copy goes part by part (UploadPartCopy); tests lower it. */
  singleCopyLimitBytes?: number;
  /**
   * Called once with the S3 client before first use. A seam for tests that must stand a strict
   * double in front of a call the local S3 server lacks (UploadPartCopy, AbortMultipartUpload).
   */
  configureClient?: (client: S3Client) => void;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey';
}

/**
 * Artifacts in an S3-compatible bucket at `<prefix>sha256/<hash>`. An upload streams through the
 * server's own hash and byte count into a temporary key (multipart, so memory stays bounded by
 * `queueSize × partSize` whatever the artifact's size); only once its sha256 is known, and its
 * size and announced length check out, is it copied to its content address and the temporary
 * key removed. A blob at its address is therefore always complete, the same bytes uploaded twice
 * are stored once, and a failed or interrupted upload leaves at most a temporary key (and an
 * aborted multipart upload) for the bucket's lifecycle rule to sweep (docs/registry.md).
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string;
  readonly #client: S3Client;
  readonly #opts: S3StoreOptions;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #singleCopyLimit: number;
  readonly #now: () => number;
  /** Multipart uploads begun for staged keys, by key: lib-storage leaves one open when the sender
   * is cut after the upload was begun but before its first part was sent, so `put` aborts it. */
  readonly #begun = new Map<string, string>();
  #closed = false;

  private constructor(client: S3Client, opts: S3StoreOptions) {
    this.#client = client;
    this.#opts = opts;
    this.bucket = opts.bucket;
    this.#prefix = opts.prefix === '' || opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`;
    this.#partSize = Math.max(opts.partSizeBytes ?? 8 * MiB, 5 * MiB, Math.ceil(opts.maxArtifactBytes / MAX_PARTS));
    this.#singleCopyLimit = opts.singleCopyLimitBytes ?? SINGLE_COPY_LIMIT;
    this.#now = opts.now ?? Date.now;
    const begun = this.#begun;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'CreateMultipartUploadCommand') {
          const key = (args.input as { Key?: string }).Key;
          const id = (out.output as { UploadId?: string }).UploadId;
          if (key !== undefined && id !== undefined && key.startsWith(`${this.#prefix}tmp/`)) begun.set(key, id);
        }
        return out;
      },
      { step: 'initialize', name: 'flotillaMultipartTracker' },
    );
  }

  /** Connects and checks that the bucket answers with these credentials, so a misconfiguration fails at start. */
  static async create(opts: S3StoreOptions): Promise<S3ArtifactStore> {
    const client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      // Checksums only where S3 requires them: many S3-compatible servers refuse the SDK's default
      // aws-chunked CRC trailers, and the server verifies every blob by its own sha256 anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    opts.configureClient?.(client);
    try {
      await client.send(new HeadBucketCommand({ Bucket: opts.bucket }));
    } catch (err) {
      client.destroy();
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw new FlotillaError('FLT_CONFIG_INVALID', `artifact bucket ${opts.bucket} at ${opts.endpoint} is not usable: ${status ? `HTTP ${status}` : (err as Error).message}`);
    }
    return new S3ArtifactStore(client, opts);
  }

  keyOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError('artifact address must be 64 lowercase hex characters');
    return `${this.#prefix}sha256/${sha256}`;
  }

  async put(source: Readable, opts: PutOptions): Promise<StoredArtifact> {
    const tmpKey = `${this.#prefix}tmp/upload-${randomBytes(12).toString('hex')}`;
    const measure = new MeasuringStream(opts.maxBytes);
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.bucket, Key: tmpKey, Body: measure, ContentType: 'application/octet-stream' },
      partSize: this.#partSize,
      queueSize: 2,
      leavePartsOnError: false,
    });
    try {
      await this.#transfer(source, measure, upload).catch(async (err: unknown) => {
        const uploadId = this.#begun.get(tmpKey);
        if (uploadId !== undefined) {
          await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: tmpKey, UploadId: uploadId })).catch(() => undefined);
        }
        throw err;
      });
      if (opts.expectedLength !== undefined && measure.bytes !== opts.expectedLength) {
        throw new FlotillaError('FLT_ARTIFACT_INCOMPLETE', `received ${measure.bytes} of ${opts.expectedLength} announced bytes`);
      }
      if (measure.bytes === 0) throw new FlotillaError('FLT_BAD_REQUEST', 'an artifact cannot be empty');
      // What the bucket holds must be what passed through the hash, byte for byte in count.
      const held = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: tmpKey }));
      if (held.ContentLength !== measure.bytes) {
        throw new Error(`object store holds ${held.ContentLength} bytes of an upload of ${measure.bytes}`);
      }
      const sha256 = measure.hash.digest('hex');
      // Same address, same bytes: an existing blob is already the one we would write.
      if ((await this.stat(sha256))?.length !== measure.bytes) await this.#copy(tmpKey, this.keyOf(sha256), measure.bytes);
      return { sha256, length: measure.bytes };
    } finally {
      this.#begun.delete(tmpKey);
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tmpKey })).catch(() => undefined);
    }
  }

  /** Runs the hashing pipe and the upload together; whichever fails first stops the other. */
  async #transfer(source: Readable, measure: MeasuringStream, upload: Upload): Promise<void> {
    const piping = pipeline(source, measure);
    const uploading = upload.done();
    try {
      await Promise.all([piping, uploading]);
    } catch (err) {
      measure.destroy();
      await upload.abort().catch(() => undefined);
      const [piped] = await Promise.allSettled([piping, uploading]);
      const cause = piped.status === 'rejected' ? (piped.reason as unknown) : err;
      if (cause instanceof FlotillaError) throw cause;
      // The sender went away (aborted upload, reset connection): what arrived is partial by definition.
      if (source.readableAborted || source.destroyed) throw new FlotillaError('FLT_ARTIFACT_INCOMPLETE', `upload interrupted after ${measure.bytes} bytes`);
      throw cause;
    }
  }

  async #copy(fromKey: string, toKey: string, size: number): Promise<void> {
    const CopySource = encodeURI(`${this.bucket}/${fromKey}`);
    if (size <= this.#singleCopyLimit) {
      await this.#client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource, ContentType: 'application/octet-stream' }));
      return;
    }
    const created = await this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, ContentType: 'application/octet-stream' }));
    const UploadId = created.UploadId;
    if (!UploadId) throw new Error('object store returned no upload id');
    try {
      const partSize = Math.max(this.#partSize, Math.ceil(size / MAX_PARTS));
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let start = 0, PartNumber = 1; start < size; start += partSize, PartNumber++) {
        const end = Math.min(start + partSize, size) - 1;
        const res = await this.#client.send(
          new UploadPartCopyCommand({ Bucket: this.bucket, Key: toKey, UploadId, PartNumber, CopySource, CopySourceRange: `bytes=${start}-${end}` }),
        );
        const ETag = res.CopyPartResult?.ETag;
        if (!ETag) throw new Error(`object store returned no ETag for copied part ${PartNumber}`);
        parts.push({ ETag, PartNumber });
      }
      await this.#client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable | null> {
    const Key = this.keyOf(sha256);
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async stat(sha256: string): Promise<StoredArtifact | null> {
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) }));
      return { sha256, length: res.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async delete(sha256: string): Promise<boolean> {
    if ((await this.stat(sha256)) === null) return false;
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) }));
    return true;
  }

  async downloadUrl(sha256: string): Promise<string | null> {
    if (this.#opts.downloads !== 'redirect') return null;
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(sha256) });
    return getSignedUrl(this.#client, command, { expiresIn: this.#opts.presignTtlSec, signingDate: new Date(this.#now()) });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }
}
