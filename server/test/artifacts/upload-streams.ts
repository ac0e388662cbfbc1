import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Yields `b` in chunks of `size`. */
export const chunked = (b: Buffer, size = 256 * 1024): Readable =>
  Readable.from(Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)));

/** Yields `bytes` in 64 KiB chunks, then fails the way a dropped client connection does. */
export function cutOff(bytes: Buffer): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= bytes.length) {
        this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
        return;
      }
      this.push(bytes.subarray(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  });
}
