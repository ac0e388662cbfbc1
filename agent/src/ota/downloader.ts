import { rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkArtifactDigest, type ArtifactDigest } from '@flotilla/release';
import { FlotillaError } from '@flotilla/protocol';
import { sleep, type Timers } from '../runtime/timers.ts';
import { fsyncDir } from '../storage/fsync-dir.ts';
import { directGet, undiciGet, UnsupportedResponse, type ArtifactGet } from './artifact-get.ts';
import { ArtifactFile } from './artifact-file.ts';

/** Answers that send the download to a presigned URL (object storage). */
const REDIRECTS = new Set([302, 303, 307, 308]);

export interface DownloadOptions {
  url: string;
  /** Extra request headers (the device's Basic authorization). */
  headers?: Record<string, string>;
  /** From the verified manifest: the download is capped at `length` and must hash to `sha256`. */
  expected: ArtifactDigest;
  /** Where the bytes accumulate; kept across cuts and restarts so the next try resumes. */
  partialPath: string;
  /** Where the verified file is renamed to. */
  finalPath: string;
  timers: Timers;
  /** No byte for this long aborts the attempt (default 30 s). */
  stallMs?: number;
  /** Attempts in a row that make no progress before giving up (default 5). */
  maxAttempts?: number;
  /** First pause between attempts, doubled each time up to maxBackoffMs (default 1 s / 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
  /**
   * Most bytes written and hashed in one event-loop turn before the download lets the loop run
   * (default 1 MiB, about 5 ms of this thread on the 2-core device class): what the socket has
   * already buffered would otherwise be taken back to back in one turn (libuv reads until the socket
   * is empty, up to 32 reads a wake-up), and the device's inference API would wait behind it.
   */
  yieldEveryBytes?: number;
  /**
   * How responses are fetched (artifact-get.ts): `direct` (default) reads into one reused buffer
   * and takes a response it does not speak again through `undici`; `undici` only uses undici.
   */
  transport?: 'direct' | 'undici';
  /** The partial file's background fdatasync step (artifact-file.ts; default 4 MiB). */
  syncEveryBytes?: number;
}

export interface DownloadResult {
  digest: ArtifactDigest;
  /** Bytes already on disk when this call started (a resumed download). */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  bytesFetched: number;
  attempts: number;
}

class StallError extends Error {}

function code(err: unknown): string | undefined {
  return err instanceof FlotillaError ? err.code : undefined;
}

/**
 * Fetches one artifact with HTTP Range resume. The bytes already in the partial file are hashed
 * first (a restart resumes from its size); the first byte past the signed length aborts the
 * transfer before it is written; a stall deadline aborts an attempt that stops moving, and attempts
 * back off. Each received chunk is written and hashed as it arrives (artifact-file.ts); reading a
 * resumed prefix and the syncs run on libuv's pool. The partial file becomes the verified file by
 * one rename, and only after the release package's digest check passed on the whole file.
 */
export async function downloadArtifact(opts: DownloadOptions): Promise<DownloadResult> {
  const { expected, partialPath, timers } = opts;
  if (!Number.isSafeInteger(expected.length) || expected.length < 0 || !/^[0-9a-f]{64}$/.test(expected.sha256)) {
    throw new TypeError('expected artifact needs a lowercase hex sha256 and a non-negative integer length');
  }
  const stallMs = opts.stallMs ?? 30_000;
  const maxAttempts = opts.maxAttempts ?? 5;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const yieldEvery = opts.yieldEveryBytes ?? 1024 * 1024;
  let backoff = opts.backoffMs ?? 1_000;
  let get: ArtifactGet = opts.transport === 'undici' ? undiciGet : directGet;

  const file = await ArtifactFile.open(partialPath, { syncEveryBytes: opts.syncEveryBytes });
  try {
    // Bytes in the partial file, all of them hashed.
    let have = await file.hashPrefix(expected.length);
    let resumedFrom = have;
    let bytesFetched = 0;
    let attempts = 0;
    let idleAttempts = 0;
    // Progress is judged against the furthest point ever reached, so a server that keeps making the
    // device start over (416, 200 to a range) cannot keep it busy forever.
    let furthest = have;
    let restartedClean = false;
    let lastFailure: unknown;

    const startOver = async (): Promise<void> => {
      await file.reset();
      have = 0;
    };

    for (;;) {
      if (opts.signal?.aborted) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'download cancelled');
      if (have < expected.length) {
        attempts++;
        try {
          bytesFetched += await attempt();
        } catch (err) {
          // A response the direct transport does not speak: nothing of it was taken, ask again through undici.
          if (err instanceof UnsupportedResponse && get !== undiciGet) {
            get = undiciGet;
            attempts--;
            continue;
          }
          const c = code(err);
          // The signed length is a hard cap: a server that sends more is not retried.
          if (c === 'FLT_OTA_LENGTH_MISMATCH') {
            await rm(partialPath, { force: true });
            throw err;
          }
          if (c === 'FLT_OTA_DOWNLOAD_FAILED' && (err as FlotillaError & { fatal?: boolean }).fatal) throw err;
          lastFailure = err;
        }
        if (have > furthest) {
          furthest = have;
          idleAttempts = 0;
          backoff = opts.backoffMs ?? 1_000;
        } else if (++idleAttempts >= maxAttempts) {
          if (lastFailure instanceof StallError) {
            throw new FlotillaError('FLT_OTA_DOWNLOAD_STALLED', `no progress for ${stallMs} ms in ${idleAttempts} attempts`, { bytes: have, total: expected.length });
          }
          throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `download failed after ${idleAttempts} attempts: ${(lastFailure as Error | undefined)?.message ?? 'no data'}`, {
            bytes: have,
            total: expected.length,
          });
        } else {
          await sleep(timers, backoff, opts.signal);
          backoff = Math.min(maxBackoff, backoff * 2);
        }
        if (have < expected.length) continue;
      }
      try {
        const digest = await file.finish();
        checkArtifactDigest(expected, digest);
        await file.close();
        await rename(partialPath, opts.finalPath);
        fsyncDir(dirname(opts.finalPath));
        return { digest, resumedFrom, bytesFetched, attempts };
      } catch (err) {
        // A resumed prefix may have been damaged on disk: one clean download before giving up.
        if (code(err) === 'FLT_OTA_HASH_MISMATCH' && resumedFrom > 0 && !restartedClean) {
          restartedClean = true;
          resumedFrom = 0;
          await startOver();
          continue;
        }
        await file.close();
        await rm(partialPath, { force: true });
        throw err;
      }
    }

    /** One HTTP request from `have` on. Returns the bytes it added to the file. */
    async function attempt(): Promise<number> {
      const ac = new AbortController();
      const onAbort = (): void => ac.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let stalled = false;
      // One timer per stall period, not one per chunk: progress only notes the time of the last byte.
      let lastByteAt = timers.now();
      let timer = timers.setTimeout(check, stallMs);
      function check(): void {
        const idle = timers.now() - lastByteAt;
        if (idle < stallMs) {
          timer = timers.setTimeout(check, stallMs - idle);
          return;
        }
        stalled = true;
        ac.abort(new StallError('stalled'));
      }
      const progress = (): void => {
        lastByteAt = timers.now();
      };
      let from = have;
      let failure: unknown = null;
      try {
        const headers: Record<string, string> = { ...opts.headers };
        if (have > 0) {
          headers.range = `bytes=${have}-${expected.length - 1}`;
          headers['if-range'] = `"${expected.sha256}"`;
        }
        let url = new URL(opts.url);
        let res = await get(url, headers, ac.signal);
        // A server on object storage answers an entitled device with a short-lived presigned URL
        // (one hop). The bucket gets only the Range: the device credential stays with the server, and
        // the bucket's ETag is not the sha256, so an If-Range there could never match.
        if (REDIRECTS.has(res.statusCode) && typeof res.headers.location === 'string') {
          await res.discard();
          url = new URL(res.headers.location, url);
          if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `artifact redirect to ${url.protocol} refused`);
          res = await get(url, headers.range ? { range: headers.range } : {}, ac.signal);
        }
        progress();
        if (res.statusCode === 200 && have > 0) {
          // The server sent the whole file (range ignored or If-Range failed): take it from the start.
          await startOver();
          from = 0;
        } else if (res.statusCode === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
          if (!m || Number(m[1]) !== have) {
            await res.discard();
            throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `server answered range ${String(res.headers['content-range'])} for bytes from ${have}`);
          }
        } else if (res.statusCode !== 200) {
          await res.discard();
          const err = new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `artifact download answered HTTP ${res.statusCode}`, { status: res.statusCode });
          // Refusals will not change by asking again; server errors and 416 (a stale partial) might.
          if (res.statusCode === 416) await startOver();
          else if (res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) Object.assign(err, { fatal: true });
          throw err;
        }
        await res.consume(take, yieldEvery);
      } catch (err) {
        failure = stalled ? new StallError(`no byte for ${stallMs} ms`) : err;
      } finally {
        timers.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      }
      // Bytes already received stay: the file holds exactly what it hashed.
      have = file.size;
      if (failure !== null) throw failure;
      return have - from;

      /** Appends one body chunk: written and hashed before the transport reads the next bytes. */
      function take(buf: Uint8Array): void {
        // The signed length is enforced before the extra bytes are written anywhere.
        const at = file.size;
        if (at + buf.byteLength > expected.length) {
          throw new FlotillaError('FLT_OTA_LENGTH_MISMATCH', `artifact exceeds its signed length of ${expected.length} bytes`, { expected: expected.length, atLeast: at + buf.byteLength });
        }
        try {
          file.append(buf);
        } catch (err) {
          throw new Error(`writing the artifact failed: ${(err as NodeJS.ErrnoException).code ?? 'EIO'}: ${(err as Error).message}`);
        }
        progress();
        opts.onProgress?.(file.size, expected.length);
      }
    }
  } finally {
    await file.close();
  }
}
