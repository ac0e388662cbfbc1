import { mkdirSync } from 'node:fs';
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';

const SHA = /^[0-9a-f]{64}$/;

/**
 * The content-addressed model cache under `<dataDir>/models`: verified files at `sha256/<hash>`,
 * downloads in progress at `partial/<hash>.part` (the expected hash in the name, so a restart knows
 * what the prefix it finds must become). A file only ever reaches `sha256/` by a rename after it
 * verified, so anything there was complete and correct when it arrived.
 */
export class ArtifactCache {
  readonly root: string;
  readonly verifiedDir: string;
  readonly partialDir: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'models');
    this.verifiedDir = join(this.root, 'sha256');
    this.partialDir = join(this.root, 'partial');
    mkdirSync(this.verifiedDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.partialDir, { recursive: true, mode: 0o700 });
  }

  pathFor(sha256: string): string {
    if (!SHA.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return join(this.verifiedDir, sha256);
  }

  partialPathFor(sha256: string): string {
    if (!SHA.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return join(this.partialDir, `${sha256}.part`);
  }

  /** Size of the verified file, or undefined when it is not cached. */
  async sizeOf(sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathFor(sha256))).size;
    } catch {
      return undefined;
    }
  }

  async partialSize(sha256: string): Promise<number> {
    try {
      return (await stat(this.partialPathFor(sha256))).size;
    } catch {
      return 0;
    }
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathFor(sha256), { force: true });
  }

  /**
   * Deletes every cached or partial file whose hash is not kept (active, previous and the download
   * in progress). Returns the hashes removed.
   */
  async gc(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.verifiedDir)) {
      if (keep.has(name)) continue;
      await rm(join(this.verifiedDir, name), { force: true, recursive: true });
      removed.push(name);
    }
    for (const name of await readdir(this.partialDir)) {
      const sha = name.endsWith('.part') ? name.slice(0, -5) : name;
      if (keep.has(sha)) continue;
      await rm(join(this.partialDir, name), { force: true, recursive: true });
      removed.push(sha);
    }
    return removed;
  }
}

/** Free bytes for an unprivileged writer on the filesystem holding `path`. */
export async function freeDiskBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
