import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FlotillaError } from '@flotilla/protocol';

/**
 * Hashes and counts bytes on their way into a store and stops the stream the moment it runs over,
 * so every store measures an upload itself instead of trusting what the sender announced.
 */
export class MeasuringStream extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  readonly #max: number;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#max) {
      done(new FlotillaError('FLT_ARTIFACT_TOO_LARGE', `artifact exceeds the maximum of ${this.#max} bytes`, { maxBytes: this.#max }));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}
