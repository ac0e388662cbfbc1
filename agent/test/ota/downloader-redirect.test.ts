import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { downloadArtifact } from '../../src/ota/downloader.ts';
import { systemTimers } from '../../src/runtime/timers.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/**
 * A stand-in for object storage behind a presigned URL: serves one blob with Range, refuses a request
 * without the signature or carrying the device's credential, and can cut the first response. Not
 * the real server or S3: the server's own S3 tests cover those.
 */
async function bucket(blob: Buffer, opts: { cutFirstAt?: number } = {}) {
  const seen: Array<{ range?: string; authorization?: string; ifRange?: string }> = [];
  let cut = opts.cutFirstAt;
  const { url } = await listen((req, res) => {
    seen.push({ range: req.headers.range, authorization: req.headers.authorization, ifRange: req.headers['if-range'] as string | undefined });
    if (!req.url?.includes('sig=ok') || req.headers.authorization) return void res.writeHead(403).end();
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    const body = blob.subarray(from);
    res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` } : {}) });
    if (cut !== undefined) {
      const n = cut;
      cut = undefined;
      res.write(body.subarray(0, n), () => res.destroy());
      return;
    }
    res.end(body);
  });
  return { url, seen };
}

describe.each(['direct', 'undici'] as const)('artifact downloads from object storage (a redirect to a presigned URL, %s transport)', (transport) => {
  it('follows the server’s redirect without the device credential, and resumes a cut download there with Range', async () => {
    const blob = randomBytes(3 * 1024 * 1024 + 11);
    const sha256 = createHash('sha256').update(blob).digest('hex');
    const store = await bucket(blob, { cutFirstAt: 1024 * 1024 });
    const serverSeen: string[] = [];
    const server = await listen((req, res) => {
      serverSeen.push(req.headers.authorization ?? '');
      if (req.headers.authorization !== 'Basic ZGV2OnNlY3JldA==') return void res.writeHead(401).end();
      res.writeHead(307, { location: `${store.url}/blob?sig=ok`, 'cache-control': 'no-store' }).end();
    });
    const dir = tempDir();
    const result = await downloadArtifact({
      url: `${server.url}/v1/artifacts/${sha256}`,
      headers: { authorization: 'Basic ZGV2OnNlY3JldA==' },
      expected: { sha256, length: blob.length },
      partialPath: join(dir, 'a.partial'),
      finalPath: join(dir, 'a'),
      timers: systemTimers,
      backoffMs: 10,
      transport,
    });
    expect(result.digest).toEqual({ sha256, length: blob.length });
    expect(readFileSync(join(dir, 'a')).equals(blob)).toBe(true);
    expect(result.attempts).toBe(2);
    // The credential went to the server only; the bucket got the Range of the second attempt and no If-Range.
    expect(serverSeen.every((a) => a !== '')).toBe(true);
    expect(store.seen.map((s) => s.authorization)).toEqual([undefined, undefined]);
    expect(store.seen[1]).toMatchObject({ range: `bytes=${1024 * 1024}-${blob.length - 1}`, ifRange: undefined });
  });

  it('refuses a redirect to anything but http or https', async () => {
    const server = await listen((_req, res) => void res.writeHead(307, { location: 'file:///etc/passwd' }).end());
    const dir = tempDir();
    await expect(
      downloadArtifact({
        url: `${server.url}/v1/artifacts/x`,
        expected: { sha256: '0'.repeat(64), length: 10 },
        partialPath: join(dir, 'a.partial'),
        finalPath: join(dir, 'a'),
        timers: systemTimers,
        backoffMs: 1,
        maxAttempts: 2,
        transport,
      }),
    ).rejects.toMatchObject({ code: 'FLT_OTA_DOWNLOAD_FAILED' });
  });
});
