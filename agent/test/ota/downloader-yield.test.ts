import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DIRECT_READ_BYTES } from '../../src/ota/artifact-get.ts';
import { downloadArtifact } from '../../src/ota/downloader.ts';
import { systemTimers } from '../../src/runtime/timers.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const SIZE = 32 * 1024 * 1024;
const FILL = 0x5a;

/**
 * An artifact server in its own process, answering as fast as loopback goes, so the download's
 * socket always holds more than the downloader has taken (a server on this test's own event loop
 * could only write between the downloader's turns).
 */
async function fastServer(): Promise<string> {
  const code = `
    const blob = Buffer.alloc(${SIZE}, ${FILL});
    const server = require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.end(blob);
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));
  `;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill();
  });
  const [line] = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
  return `http://127.0.0.1:${line}/artifact`;
}

// The most one read hands the downloader: undici's socket reads are 64 KiB, the direct transport's its buffer.
const READ = { direct: DIRECT_READ_BYTES, undici: 64 * 1024 };

describe.each(['direct', 'undici'] as const)('the downloader and the event loop (%s transport)', (transport) => {
  it('lets the event loop run after every yieldEveryBytes it writes and hashes', async () => {
    const url = await fastServer();
    const sha256 = createHash('sha256').update(Buffer.alloc(SIZE, FILL)).digest('hex');
    const dir = tempDir();
    const yieldEveryBytes = 256 * 1024;
    // A loop turn that runs between the downloader's chunks notes how far the download had got;
    // each progress call measures how many bytes went by since the last such turn.
    let atLastTurn = 0;
    let latest = 0;
    let mostInOneTurn = 0;
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      if (!ticking) return;
      turns++;
      atLastTurn = latest;
      setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await downloadArtifact({
        url,
        expected: { sha256, length: SIZE },
        partialPath: join(dir, 'a.partial'),
        finalPath: join(dir, 'a'),
        timers: systemTimers,
        yieldEveryBytes,
        transport,
        onProgress: (bytes) => {
          latest = bytes;
          mostInOneTurn = Math.max(mostInOneTurn, bytes - atLastTurn);
        },
      });
    } finally {
      ticking = false;
    }
    // A turn may overshoot the bound by one read.
    expect(mostInOneTurn).toBeLessThanOrEqual(yieldEveryBytes + READ[transport]);
    expect(turns).toBeGreaterThanOrEqual(SIZE / (yieldEveryBytes + READ[transport]));
  });
});
