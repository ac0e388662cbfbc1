import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ArtifactWriter } from '../../src/ota/artifact-writer.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function openWriter(path: string): ArtifactWriter {
  const w = ArtifactWriter.open(path);
  onTestFinished(() => w.close());
  return w;
}

describe('ArtifactWriter', () => {
  it('writes and hashes chunks of every size, including ones larger than its ring, in order', async () => {
    const path = join(tempDir(), 'a.partial');
    const data = randomBytes(21 * 1024 * 1024 + 17);
    const w = openWriter(path);
    expect(await w.hashPrefix(data.length)).toBe(0);
    w.beginAttempt();
    // Small socket-sized chunks, then one chunk bigger than the 8 MiB ring.
    let at = 0;
    for (const size of [1, 7, 65_536, 1_000_003]) {
      await w.push(data.subarray(at, at + size));
      at += size;
    }
    await w.push(data.subarray(at));
    const r = await w.endAttempt();
    expect(r).toEqual({ size: data.length, error: null });
    expect(await w.finish()).toEqual({ sha256: sha(data), length: data.length });
    await w.close();
    expect(sha(readFileSync(path))).toBe(sha(data));
  });

  it('resumes: hashes the bytes already in the partial file and appends after them', async () => {
    const path = join(tempDir(), 'a.partial');
    const data = randomBytes(3 * 1024 * 1024);
    writeFileSync(path, data.subarray(0, 1_234_567));
    const w = openWriter(path);
    expect(await w.hashPrefix(data.length)).toBe(1_234_567);
    w.beginAttempt();
    await w.push(data.subarray(1_234_567));
    expect((await w.endAttempt()).size).toBe(data.length);
    expect((await w.finish()).sha256).toBe(sha(data));
  });

  it('empties a partial file longer than the signed length instead of hashing it', async () => {
    const path = join(tempDir(), 'a.partial');
    writeFileSync(path, randomBytes(100));
    const w = openWriter(path);
    expect(await w.hashPrefix(50)).toBe(0);
    await w.close();
    expect(readFileSync(path).length).toBe(0);
  });

  it('starts over on reset: the file is emptied and the hash covers only what follows', async () => {
    const path = join(tempDir(), 'a.partial');
    const w = openWriter(path);
    await w.hashPrefix(1000);
    w.beginAttempt();
    await w.push(Buffer.from('stale bytes'));
    await w.endAttempt();
    await w.reset();
    w.beginAttempt();
    await w.push(Buffer.from('fresh'));
    expect((await w.endAttempt()).size).toBe(5);
    expect(await w.finish()).toEqual({ sha256: sha(Buffer.from('fresh')), length: 5 });
    await w.close();
    expect(readFileSync(path, 'utf8')).toBe('fresh');
  });

  it('keeps every pushed byte across attempts, as a cut download resumed on the same writer does', async () => {
    const path = join(tempDir(), 'a.partial');
    const data = randomBytes(2 * 1024 * 1024);
    const w = openWriter(path);
    await w.hashPrefix(data.length);
    for (const [from, to] of [[0, 700_000], [700_000, 700_001], [700_001, data.length]] as const) {
      w.beginAttempt();
      await w.push(data.subarray(from, to));
      expect((await w.endAttempt()).size).toBe(to);
    }
    expect((await w.finish()).sha256).toBe(sha(data));
  });

  it('can be closed twice, and refuses work once closed', async () => {
    const w = ArtifactWriter.open(join(tempDir(), 'a.partial'));
    await w.close();
    await w.close();
    await expect(w.hashPrefix(10)).rejects.toThrow(/exited/);
  });
});
