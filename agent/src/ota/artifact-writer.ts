import { Worker } from 'node:worker_threads';
import { waitAsync } from '../runtime/wait-async.ts';

const WORKER_URL = new URL('./artifact-writer.mjs', import.meta.url);

// Control slots, as in artifact-writer.mjs.
const PRODUCED = 0;
const CONSUMED = 1;
const SEQ = 2;
const END = 3;

/** Shared ring between the receiving thread and the writer thread: a power of two. */
const RING_BYTES = 8 * 1024 * 1024;
/** The writer flushes to disk every this many bytes, so the final fsync has little left to do. */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;


interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  size?: number;
  written?: number;
  sha256?: string;
}

export interface AttemptResult {
  /** Bytes the partial file holds (and the hash has seen) after the attempt. */
  size: number;
  /** The disk refused a write: the rest of the attempt was dropped. */
  error: string | null;
}

/**
 * Owner of the thread that hashes and writes one artifact's partial file. The downloader copies each
 * received chunk into a shared ring (`push`) and goes straight back to the socket; the writer thread
 * writes, hashes, and flushes behind it. One attempt at a time: `beginAttempt`, pushes, `endAttempt`.
 */
export class ArtifactWriter {
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  readonly #ring: Buffer;
  readonly #mask: number;
  #produced = 0;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #attempt: Promise<Reply> | null = null;
  #failed: Error | null = null;
  #closed: Promise<void> | null = null;

  private constructor(partialPath: string) {
    const control = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
    const data = new SharedArrayBuffer(RING_BYTES);
    this.#ctl = new Int32Array(control);
    this.#ring = Buffer.from(data);
    this.#mask = RING_BYTES - 1;
    this.#worker = new Worker(WORKER_URL, { workerData: { partialPath, control, data, syncEveryBytes: SYNC_EVERY_BYTES }, stdout: false, stderr: false });
    this.#worker.on('message', (r: Reply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      p.resolve(r);
    });
    const fail = (err: Error): void => {
      this.#failed ??= err;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`artifact writer thread exited (${code})`)));
  }

  /** Opens (creating if needed) the partial file on a writer thread. */
  static open(partialPath: string): ArtifactWriter {
    return new ArtifactWriter(partialPath);
  }

  #call(msg: Record<string, unknown>): Promise<Reply> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...msg, id });
    });
  }

  async #ok(msg: Record<string, unknown>): Promise<Reply> {
    const r = await this.#call(msg);
    if (!r.ok) throw new Error(r.error ?? 'artifact writer failed');
    return r;
  }

  /** Hashes the bytes the partial file already holds; a file longer than `limit` is emptied. Resolves with its size. */
  async hashPrefix(limit: number): Promise<number> {
    return (await this.#ok({ op: 'prefix', limit })).size!;
  }

  /** Empties the partial file and starts a fresh hash. */
  async reset(): Promise<void> {
    await this.#ok({ op: 'reset' });
  }

  beginAttempt(): void {
    if (this.#attempt) throw new Error('an attempt is already open');
    Atomics.store(this.#ctl, END, 0);
    this.#attempt = this.#call({ op: 'stream' });
  }

  /** Copies a chunk into the ring, waiting for room when the writer is behind. */
  async push(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#failed) throw this.#failed;
      const consumed = Atomics.load(this.#ctl, CONSUMED);
      const free = RING_BYTES - ((this.#produced - consumed) | 0);
      if (free === 0) {
        const w = waitAsync(this.#ctl, CONSUMED, consumed, 1000);
        if (w.async) await w.value;
        continue;
      }
      const pos = this.#produced & this.#mask;
      const n = Math.min(free, RING_BYTES - pos, chunk.byteLength - at);
      this.#ring.set(chunk.subarray(at, at + n), pos);
      at += n;
      this.#produced = (this.#produced + n) | 0;
      Atomics.store(this.#ctl, PRODUCED, this.#produced);
      Atomics.add(this.#ctl, SEQ, 1);
      Atomics.notify(this.#ctl, SEQ);
    }
  }

  /** Lets the writer drain the ring and resolves with what the file holds. */
  async endAttempt(): Promise<AttemptResult> {
    const attempt = this.#attempt;
    if (!attempt) throw new Error('no attempt is open');
    Atomics.store(this.#ctl, END, 1);
    Atomics.add(this.#ctl, SEQ, 1);
    Atomics.notify(this.#ctl, SEQ);
    try {
      const r = await attempt;
      if (!r.ok) return { size: r.size ?? 0, error: r.error ?? 'artifact writer failed' };
      return { size: r.size!, error: r.error ?? null };
    } finally {
      this.#attempt = null;
    }
  }

  /** Makes the file durable and returns the digest of everything written. */
  async finish(): Promise<{ sha256: string; length: number }> {
    const r = await this.#ok({ op: 'finish' });
    return { sha256: r.sha256!, length: r.size! };
  }

  /** Closes the file and ends the thread; safe to call twice. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#attempt) await this.endAttempt().catch(() => undefined);
      await this.#ok({ op: 'close' }).catch(() => undefined);
      await this.#worker.terminate();
    })();
    return this.#closed;
  }
}
