import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { downloadArtifact } from '../../src/ota/downloader.ts';
import { systemTimers } from '../../src/runtime/timers.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Serves `blob` in `parts` pieces, `gapMs` apart: a slow link that never stops for long. */
async function trickle(blob: Buffer, parts: number, gapMs: number): Promise<string> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': blob.length });
    const size = Math.ceil(blob.length / parts);
    let at = 0;
    const next = (): void => {
      const piece = blob.subarray(at, at + size);
      at += piece.length;
      if (at >= blob.length) return void res.end(piece);
      res.write(piece);
      setTimeout(next, gapMs);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
}

describe.each(['direct', 'undici'] as const)('the download stall deadline (%s transport)', (transport) => {
  it('keeps an attempt alive while bytes keep coming, even when the whole transfer outlasts the deadline', async () => {
    const blob = randomBytes(256 * 1024);
    const sha256 = createHash('sha256').update(blob).digest('hex');
    // Five pieces 250 ms apart: about 1 s in all against a 700 ms deadline, never 700 ms without a byte.
    const url = await trickle(blob, 5, 250);
    const dir = tempDir();
    const result = await downloadArtifact({
      url,
      expected: { sha256, length: blob.length },
      partialPath: join(dir, 'a.partial'),
      finalPath: join(dir, 'a'),
      timers: systemTimers,
      stallMs: 700,
      maxAttempts: 1,
      transport,
    });
    expect(result).toMatchObject({ attempts: 1, resumedFrom: 0, bytesFetched: blob.length });
    expect(readFileSync(join(dir, 'a')).equals(blob)).toBe(true);
    expect(existsSync(join(dir, 'a.partial'))).toBe(false);
  });
});
