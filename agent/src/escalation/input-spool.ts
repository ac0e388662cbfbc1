import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const SUFFIX = '.input';
const TMP = '.tmp';

/**
 * `<sequence>-<base64url of the request id>.input`: names stay safe whatever a request id holds,
 * and the sequence keeps the write order across restarts (file times tie within a millisecond).
 */
const fileOf = (seq: number, requestId: string): string => `${String(seq).padStart(12, '0')}-${Buffer.from(requestId, 'utf8').toString('base64url')}${SUFFIX}`;
const NAME = /^(\d{12})-([A-Za-z0-9_-]*)\.input$/;

/**
 * Durable spool of hard-example inputs too large for an MQTT event, one file per example, waiting
 * for upload. Synchronous like the outbox it sits beside: a `put` has reached the disk (written,
 * fsynced, renamed into place) before the example's event is enqueued, so an event in the outbox
 * never refers to bytes a crash could take. Bounded by `maxBytes`: a full spool refuses, and the
 * example travels without its input as before.
 */
export class InputSpool {
  readonly dir: string;
  readonly maxBytes: number;
  /** Request id → its file and bytes, in the order the files were written (oldest upload first). */
  readonly #files = new Map<string, { file: string; bytes: number }>();
  #bytes = 0;
  #nextSeq = 1;

  private constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** Opens (creating) the spool folder, drops half-written files, and takes stock of what waits. */
  static open(dir: string, opts: { maxBytes?: number } = {}): InputSpool {
    const spool = new InputSpool(dir, opts.maxBytes ?? 64 * 1024 * 1024);
    mkdirSync(dir, { recursive: true });
    const found: Array<{ id: string; file: string; bytes: number; seq: number }> = [];
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.endsWith(TMP)) {
        rmSync(path, { force: true });
        continue;
      }
      const m = NAME.exec(name);
      if (m) found.push({ id: Buffer.from(m[2]!, 'base64url').toString('utf8'), file: name, bytes: statSync(path).size, seq: Number(m[1]) });
    }
    for (const f of found.sort((a, b) => a.seq - b.seq)) {
      spool.#files.set(f.id, { file: f.file, bytes: f.bytes });
      spool.#bytes += f.bytes;
      spool.#nextSeq = f.seq + 1;
    }
    return spool;
  }

  /** Inputs waiting and their bytes. */
  depth(): { inputs: number; bytes: number } {
    return { inputs: this.#files.size, bytes: this.#bytes };
  }

  /** Request ids waiting, oldest first. */
  pending(): string[] {
    return [...this.#files.keys()];
  }

  has(requestId: string): boolean {
    return this.#files.has(requestId);
  }

  /** Stores an input durably; false when it would overflow the spool. Storing an id again keeps the first. */
  put(requestId: string, data: Uint8Array): boolean {
    if (this.#files.has(requestId)) return true;
    if (this.#bytes + data.byteLength > this.maxBytes) return false;
    const file = fileOf(this.#nextSeq++, requestId);
    const path = join(this.dir, file);
    const tmp = `${path}${TMP}`;
    const fd = openSync(tmp, 'w');
    try {
      let at = 0;
      while (at < data.byteLength) at += writeSync(fd, data, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    this.#files.set(requestId, { file, bytes: data.byteLength });
    this.#bytes += data.byteLength;
    return true;
  }

  /** The stored bytes, or undefined when the input is gone. */
  read(requestId: string): Buffer | undefined {
    const entry = this.#files.get(requestId);
    if (!entry) return undefined;
    try {
      return readFileSync(join(this.dir, entry.file));
    } catch {
      this.remove(requestId);
      return undefined;
    }
  }

  /** Deletes an input once the server has it (or refused it for good). */
  remove(requestId: string): void {
    const entry = this.#files.get(requestId);
    if (entry === undefined) return;
    rmSync(join(this.dir, entry.file), { force: true });
    this.#files.delete(requestId);
    this.#bytes -= entry.bytes;
  }
}
