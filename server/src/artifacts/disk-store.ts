import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FlotillaError } from '@flotilla/protocol';
import type { ArtifactStore, ByteRange, PutOptions, StoredArtifact } from './artifact-store.ts';
import { MeasuringStream } from './measuring-stream.ts';

const SHA256 = /^[0-9a-f]{64}$/;
/** Large reads keep a download's syscall and event count low; 64 KiB (the default) costs throughput. */
const READ_CHUNK = 256 * 1024;

/**
 * Artifacts on local disk at `<root>/sha256/ab/abcdef…`. Uploads stream into `<root>/tmp` while
 * being hashed, are fsynced, then renamed into place, so a blob at its address is always complete
 * and a crash mid-upload leaves only a temp file, which `create` sweeps away.
 */
export class DiskArtifactStore implements ArtifactStore {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  static async create(root: string): Promise<DiskArtifactStore> {
    await rm(join(root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(root, 'tmp'), { recursive: true });
    await mkdir(join(root, 'sha256'), { recursive: true });
    return new DiskArtifactStore(root);
  }

  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError('artifact address must be 64 lowercase hex characters');
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  async put(source: Readable, opts: PutOptions): Promise<StoredArtifact> {
    const tmp = join(this.root, 'tmp', `upload-${randomBytes(12).toString('hex')}`);
    const measure = new MeasuringStream(opts.maxBytes);
    try {
      try {
        await pipeline(source, measure, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
      } catch (err) {
        if (err instanceof FlotillaError) throw err;
        // The sender went away (aborted upload, reset connection): the file is partial by definition.
        if (source.readableAborted || source.destroyed) throw new FlotillaError('FLT_ARTIFACT_INCOMPLETE', `upload interrupted after ${measure.bytes} bytes`);
        throw err;
      }
      if (opts.expectedLength !== undefined && measure.bytes !== opts.expectedLength) {
        throw new FlotillaError('FLT_ARTIFACT_INCOMPLETE', `received ${measure.bytes} of ${opts.expectedLength} announced bytes`);
      }
      if (measure.bytes === 0) throw new FlotillaError('FLT_BAD_REQUEST', 'an artifact cannot be empty');
      const handle = await open(tmp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const sha256 = measure.hash.digest('hex');
      const dest = this.pathOf(sha256);
      await mkdir(join(this.root, 'sha256', sha256.slice(0, 2)), { recursive: true });
      // Same address, same bytes: replacing an existing blob with an identical one is harmless.
      await rename(tmp, dest);
      return { sha256, length: measure.bytes };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable | null> {
    const path = this.pathOf(sha256);
    if ((await this.stat(sha256)) === null) return null;
    return createReadStream(path, { highWaterMark: READ_CHUNK, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async stat(sha256: string): Promise<StoredArtifact | null> {
    try {
      const s = await stat(this.pathOf(sha256));
      return { sha256, length: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async delete(sha256: string): Promise<boolean> {
    try {
      await unlink(this.pathOf(sha256));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
