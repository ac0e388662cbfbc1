import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ArtifactFile, type ArtifactFileOptions } from '../../src/ota/artifact-file.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function openFile(path: string, opts?: ArtifactFileOptions): Promise<ArtifactFile> {
  const f = await ArtifactFile.open(path, opts);
  onTestFinished(() => f.close());
  return f;
}

describe('ArtifactFile', () => {
  it('writes and hashes chunks of every size in order, flushing in the background as it goes', async () => {
    const path = join(tempDir(), 'a.partial');
    const data = randomBytes(5 * 1024 * 1024 + 17);
    // A small sync interval so background flushes overlap the appends that follow them.
    const f = await openFile(path, { syncEveryBytes: 256 * 1024 });
    expect(await f.hashPrefix(data.length)).toBe(0);
    let at = 0;
    for (const size of [1, 7, 65_536, 1_000_003]) {
      f.append(data.subarray(at, at + size));
      at += size;
    }
    f.append(data.subarray(at));
    expect(f.size).toBe(data.length);
    expect(await f.finish()).toEqual({ sha256: sha(data), length: data.length });
    await f.close();
    expect(sha(readFileSync(path))).toBe(sha(data));
  });

  it('resumes: hashes the bytes already in the partial file and appends after them', async () => {
    const path = join(tempDir(), 'a.partial');
    const data = randomBytes(3 * 1024 * 1024);
    writeFileSync(path, data.subarray(0, 1_234_567));
    const f = await openFile(path);
    expect(await f.hashPrefix(data.length)).toBe(1_234_567);
    f.append(data.subarray(1_234_567));
    expect(f.size).toBe(data.length);
    expect((await f.finish()).sha256).toBe(sha(data));
  });

  it('empties a partial file longer than the signed length instead of hashing it', async () => {
    const path = join(tempDir(), 'a.partial');
    writeFileSync(path, randomBytes(100));
    const f = await openFile(path);
    expect(await f.hashPrefix(50)).toBe(0);
    await f.close();
    expect(readFileSync(path).length).toBe(0);
  });

  it('starts over on reset: the file is emptied and the hash covers only what follows', async () => {
    const path = join(tempDir(), 'a.partial');
    const f = await openFile(path);
    await f.hashPrefix(1000);
    f.append(Buffer.from('stale bytes'));
    await f.reset();
    f.append(Buffer.from('fresh'));
    expect(f.size).toBe(5);
    expect(await f.finish()).toEqual({ sha256: sha(Buffer.from('fresh')), length: 5 });
    await f.close();
    expect(readFileSync(path, 'utf8')).toBe('fresh');
  });

  it('throws on a write the disk refuses and keeps the file and the hash in agreement', async () => {
    const path = join(tempDir(), 'a.partial');
    writeFileSync(path, 'kept');
    // /dev/full takes no byte: every write fails with ENOSPC, as a full disk does.
    const full = await openFile('/dev/full', { syncEveryBytes: 0 });
    expect(() => full.append(Buffer.from('lost'))).toThrow(/ENOSPC/);
    expect(full.size).toBe(0);
    const f = await openFile(path);
    expect(await f.hashPrefix(100)).toBe(4);
    expect((await f.finish()).sha256).toBe(sha(Buffer.from('kept')));
  });

  it('can be closed twice, and refuses work once closed', async () => {
    const f = await ArtifactFile.open(join(tempDir(), 'a.partial'));
    await f.close();
    await f.close();
    await expect(f.hashPrefix(10)).rejects.toThrow(/closed/);
    expect(() => f.append(Buffer.from('x'))).toThrow(/closed/);
  });
});
