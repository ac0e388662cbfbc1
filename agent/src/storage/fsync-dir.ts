import { closeSync, fsyncSync, openSync } from 'node:fs';

/** Makes a rename in `dir` durable; some filesystems refuse fsync on a directory, the rename stays atomic there. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort, see above
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
