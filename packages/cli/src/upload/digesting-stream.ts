import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through unchanged while hashing and counting them, so the file is read once: the
 * sha256 the CLI shows is of exactly the bytes it sent.
 */
export class DigestingStream extends Transform {
  readonly #hash = createHash('sha256');
  readonly #onBytes: (total: number) => void;
  #length = 0;
  #digest: string | undefined;

  constructor(onBytes: (total: number) => void = () => {}) {
    super();
    this.#onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#length += chunk.length;
    this.#onBytes(this.#length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = this.#hash.digest('hex');
    callback();
  }

  get length(): number {
    return this.#length;
  }

  /** Hex sha256 of everything that passed; undefined until the input has ended. */
  get sha256(): string | undefined {
    return this.#digest;
  }
}
