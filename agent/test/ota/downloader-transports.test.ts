import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { downloadArtifact, type DownloadOptions } from '../../src/ota/downloader.ts';
import { systemTimers } from '../../src/runtime/timers.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { TestArtifactServer } from './test-artifact-server.ts';

async function setup(size = 2 * 1024 * 1024 + 5) {
  const server = await TestArtifactServer.start();
  const blob = randomBytes(size);
  const sha256 = createHash('sha256').update(blob).digest('hex');
  server.artifacts.set(sha256, blob);
  const dir = tempDir();
  const opts: DownloadOptions = {
    url: `${server.url}/v1/artifacts/${sha256}`,
    expected: { sha256, length: blob.length },
    partialPath: join(dir, 'a.partial'),
    finalPath: join(dir, 'a'),
    timers: systemTimers,
    backoffMs: 5,
  };
  return { server, blob, opts };
}

// The same faults through both transports; the OTA model-manager tests run the default (direct).
describe.each(['direct', 'undici'] as const)('artifact downloads through the %s transport', (transport) => {
  it('resumes a cut response with Range from the bytes the file holds, re-sending none of them', async () => {
    const { server, blob, opts } = await setup();
    server.faults.push({ cutAfter: 700_000 });
    const result = await downloadArtifact({ ...opts, transport });
    expect(readFileSync(opts.finalPath).equals(blob)).toBe(true);
    expect(result.attempts).toBe(2);
    const resumedFrom = Number(/^bytes=(\d+)-/.exec(server.artifactRequests[1]!.range ?? '')?.[1]);
    // What the server wrote before the cut may not all have arrived, but nothing arrived twice.
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(700_000);
    expect(server.bytesSent).toBe(blob.length + 700_000 - resumedFrom);
  });

  it('stops at the signed length: a server that sends more gets FLT_OTA_LENGTH_MISMATCH and leaves no file', async () => {
    const { server, opts } = await setup();
    server.faults.push({ extraBytes: 10 });
    await expect(downloadArtifact({ ...opts, transport })).rejects.toMatchObject({ code: 'FLT_OTA_LENGTH_MISMATCH' });
    expect(existsSync(opts.partialPath)).toBe(false);
    expect(existsSync(opts.finalPath)).toBe(false);
  });

  it('aborts a stalled response after the stall deadline and resumes it on the next attempt', async () => {
    const { server, blob, opts } = await setup();
    server.faults.push({ stallAfter: 300_000 });
    const result = await downloadArtifact({ ...opts, transport, stallMs: 200 });
    expect(readFileSync(opts.finalPath).equals(blob)).toBe(true);
    expect(result.attempts).toBe(2);
    expect(server.artifactRequests[1]!.range).toBe(`bytes=300000-${blob.length - 1}`);
  });

  it('refuses bytes that do not hash to the signed digest with FLT_OTA_HASH_MISMATCH', async () => {
    const { opts } = await setup();
    await expect(downloadArtifact({ ...opts, transport, expected: { ...opts.expected, sha256: 'f'.repeat(64) } })).rejects.toMatchObject({ code: 'FLT_OTA_HASH_MISMATCH' });
    expect(existsSync(opts.finalPath)).toBe(false);
  });

  it('takes a chunked response too', async () => {
    const { server, blob, opts } = await setup();
    server.faults.push({ chunked: true }, { chunked: true });
    const result = await downloadArtifact({ ...opts, transport });
    expect(readFileSync(opts.finalPath).equals(blob)).toBe(true);
    expect(result.attempts).toBe(1);
    // The direct transport reads no body it cannot frame: it asks again through undici, from the start.
    expect(server.artifactRequests).toHaveLength(transport === 'direct' ? 2 : 1);
    expect(statSync(opts.finalPath).size).toBe(blob.length);
  });
});
