import { createHash, type Hash } from 'node:crypto';
import { close, fdatasync, fstat, ftruncate, open, read, writeSync } from 'node:fs';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);
const fdatasyncAsync = promisify(fdatasync);
const readAsync = promisify(read);

/** A resumed prefix is read back in slices this big, so hashing one never holds the event loop long. */
const PREFIX_SLICE_BYTES = 1024 * 1024;
/** Flush to disk in the background every this many bytes, so dirty pages never pile up and the final sync is short. */
const DEFAULT_SYNC_EVERY_BYTES = 4 * 1024 * 1024;

export interface ArtifactFileOptions {
  /** Background fdatasync every this many appended bytes; 0 turns it off (default 4 MiB). */
  syncEveryBytes?: number;
}

/**
 * One artifact's partial file and the running sha256 of exactly the bytes it holds.
 *
 * Received chunks are appended where they arrive, on the receiving thread: a write into the page
 * cache plus a hash of the same (socket-sized) chunk, then the chunk is garbage. Measured on the
 * 2-core device class this costs about half the CPU of handing bytes to a writer thread or to
 * libuv's pool (no thread start, no copy, no cross-thread wake-ups, no buffers kept alive while a
 * write is in flight), and each step holds the event loop for one chunk only. Everything that can
 * take long (reading a resumed prefix, fdatasync, close) goes through libuv's pool instead.
 *
 * Each chunk is hashed for the length the disk really took, so the file always holds exactly what
 * the hash has seen, and a cut or failed write leaves a prefix the next attempt resumes from.
 */
export class ArtifactFile {
  #fd: number;
  #hash: Hash = createHash('sha256');
  #size: number;
  #unsynced = 0;
  readonly #syncEvery: number;
  #syncing: Promise<void> | null = null;
  #syncError: Error | null = null;
  #closed: Promise<void> | null = null;

  private constructor(fd: number, size: number, syncEvery: number) {
    this.#fd = fd;
    this.#size = size;
    this.#syncEvery = syncEvery;
  }

  /** Opens (creating if needed) the partial file; appends always go to its end. */
  static async open(path: string, opts: ArtifactFileOptions = {}): Promise<ArtifactFile> {
    const fd = await openAsync(path, 'a+');
    try {
      const { size } = await fstatAsync(fd);
      return new ArtifactFile(fd, size, opts.syncEveryBytes ?? DEFAULT_SYNC_EVERY_BYTES);
    } catch (err) {
      await closeAsync(fd).catch(() => undefined);
      throw err;
    }
  }

  /** Bytes the file holds, every one of them hashed. */
  get size(): number {
    return this.#size;
  }

  #live(): number {
    if (this.#closed) throw new Error('artifact file is closed');
    return this.#fd;
  }

  /** Hashes the bytes the file already holds (a resumed download); a file longer than `limit` is emptied. Resolves with its size. */
  async hashPrefix(limit: number): Promise<number> {
    const fd = this.#live();
    this.#hash = createHash('sha256');
    const { size } = await fstatAsync(fd);
    if (size > limit) {
      await this.reset();
      return 0;
    }
    const slice = Buffer.allocUnsafe(Math.min(PREFIX_SLICE_BYTES, Math.max(size, 1)));
    let at = 0;
    while (at < size) {
      const { bytesRead } = await readAsync(fd, slice, 0, Math.min(slice.byteLength, size - at), at);
      if (bytesRead === 0) break;
      this.#hash.update(slice.subarray(0, bytesRead));
      at += bytesRead;
    }
    // A file that shrank under us: what was read is what counts.
    if (at < size) await ftruncateAsync(fd, at);
    this.#size = at;
    return at;
  }

  /** Empties the file and starts a fresh hash. */
  async reset(): Promise<void> {
    const fd = this.#live();
    await this.#syncing;
    await ftruncateAsync(fd, 0);
    this.#hash = createHash('sha256');
    this.#size = 0;
    this.#unsynced = 0;
  }

  /**
   * Writes then hashes one received chunk. A failed write throws after hashing what the disk did
   * take, so the file and the hash still agree and the download can resume from `size`.
   */
  append(chunk: Uint8Array): void {
    const fd = this.#live();
    let done = 0;
    try {
      while (done < chunk.byteLength) done += writeSync(fd, chunk, done, chunk.byteLength - done);
    } finally {
      if (done > 0) {
        this.#hash.update(done === chunk.byteLength ? chunk : chunk.subarray(0, done));
        this.#size += done;
        this.#unsynced += done;
      }
    }
    if (this.#syncEvery > 0 && this.#unsynced >= this.#syncEvery && !this.#syncing) this.#syncInBackground();
  }

  #syncInBackground(): void {
    this.#unsynced = 0;
    this.#syncing = fdatasyncAsync(this.#fd)
      .catch((err: unknown) => {
        this.#syncError ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.#syncing = null;
      });
  }

  /** Makes the file durable and returns the digest of everything it holds; the hash is spent afterwards. */
  async finish(): Promise<{ sha256: string; length: number }> {
    const fd = this.#live();
    await this.#syncing;
    if (this.#syncError) throw this.#syncError;
    await fdatasyncAsync(fd);
    this.#unsynced = 0;
    return { sha256: this.#hash.digest('hex'), length: this.#size };
  }

  /** Closes the file; safe to call twice. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#syncing;
      const fd = this.#fd;
      this.#fd = -1;
      await closeAsync(fd);
    })();
    return this.#closed;
  }
}
