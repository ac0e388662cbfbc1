import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createArtifactVerifier, type ArtifactDigest, type ArtifactVerifier } from '@flotilla/release';
import { FlotillaError } from '@flotilla/protocol';
import { request } from 'undici';
import { sleep, type Timers } from '../runtime/timers.ts';
import { fsyncDir } from '../storage/fsync-dir.ts';

/** Verified bytes gathered before one file write. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** undici's response buffer. */
const BODY_BUFFER_BYTES = 4 * 1024 * 1024;

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
 * first (a restart resumes from its size), every chunk goes through the release package's streaming
 * verifier (so the first byte past the signed length aborts the transfer), a stall deadline aborts
 * an attempt that stops moving, and attempts back off. The partial file becomes the verified file by
 * one rename, and only after the whole file hashed right.
 */
export async function downloadArtifact(opts: DownloadOptions): Promise<DownloadResult> {
  const { expected, partialPath, timers } = opts;
  const stallMs = opts.stallMs ?? 30_000;
  const maxAttempts = opts.maxAttempts ?? 5;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  let backoff = opts.backoffMs ?? 1_000;

  let verifier: ArtifactVerifier = createArtifactVerifier(expected);
  let have = 0;
  let resumedFrom = 0;
  let bytesFetched = 0;
  let attempts = 0;
  let idleAttempts = 0;
  // Progress is judged against the furthest point ever reached, so a server that keeps making the
  // device start over (416, 200 to a range) cannot keep it busy forever.
  let furthest = 0;
  let restartedClean = false;
  let lastFailure: unknown;

  const startOver = async (): Promise<void> => {
    await rm(partialPath, { force: true });
    verifier = createArtifactVerifier(expected);
    have = 0;
  };
  const hashPrefix = async (): Promise<void> => {
    verifier = createArtifactVerifier(expected);
    have = 0;
    let size = 0;
    try {
      size = (await stat(partialPath)).size;
    } catch {
      return;
    }
    if (size > expected.length) return startOver();
    const stream = createReadStream(partialPath, { end: Math.max(0, size - 1) });
    try {
      if (size > 0) for await (const chunk of stream) verifier.update(chunk as Buffer);
    } finally {
      stream.destroy();
    }
    have = size;
  };

  await hashPrefix();
  resumedFrom = have;
  furthest = have;

  for (;;) {
    if (opts.signal?.aborted) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'download cancelled');
    if (have < expected.length) {
      attempts++;
      try {
        const got = await attempt();
        bytesFetched += got;
      } catch (err) {
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
      const digest = verifier.final();
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
      await rm(partialPath, { force: true });
      throw err;
    }
  }

  /** One HTTP request from `have` on. Returns the bytes it wrote. */
  async function attempt(): Promise<number> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    let timer = timers.setTimeout(() => fire(), stallMs);
    function fire(): void {
      stalled = true;
      ac.abort(new StallError('stalled'));
    }
    const progress = (): void => {
      timers.clearTimeout(timer);
      timer = timers.setTimeout(() => fire(), stallMs);
    };
    let wrote = 0;
    const fh = await open(partialPath, 'a');
    // Socket chunks are small (tens of KiB); one file write per chunk made the download wait on the
    // disk thread for each of them. Verified bytes are gathered and written in batches instead.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let writeFailed = false;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const batch = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      const n = pendingBytes;
      pending = [];
      pendingBytes = 0;
      try {
        await fh.write(batch);
      } catch (err) {
        writeFailed = true;
        throw err;
      }
      have += n;
      wrote += n;
    };
    try {
      const headers: Record<string, string> = { ...opts.headers };
      if (have > 0) {
        headers.range = `bytes=${have}-${expected.length - 1}`;
        headers['if-range'] = `"${expected.sha256}"`;
      }
      // A large body buffer lets undici hand over big chunks (its 64 KiB default made it half as fast as curl here).
      const res = await request(opts.url, { method: 'GET', headers, signal: ac.signal, headersTimeout: 0, bodyTimeout: 0, highWaterMark: BODY_BUFFER_BYTES });
      progress();
      if (res.statusCode === 200 && have > 0) {
        // The server sent the whole file (range ignored or If-Range failed): take it from the start.
        await fh.truncate(0);
        verifier = createArtifactVerifier(expected);
        have = 0;
      } else if (res.statusCode === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== have) {
          await res.body.dump();
          throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `server answered range ${String(res.headers['content-range'])} for bytes from ${have}`);
        }
      } else if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        const err = new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `artifact download answered HTTP ${res.statusCode}`, { status: res.statusCode });
        // Refusals will not change by asking again; server errors and 416 (a stale partial) might.
        if (res.statusCode === 416) await startOver();
        else if (res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) Object.assign(err, { fatal: true });
        throw err;
      }
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        // Throws FLT_OTA_LENGTH_MISMATCH before the extra bytes are written anywhere.
        verifier.update(buf);
        pending.push(buf);
        pendingBytes += buf.byteLength;
        progress();
        if (pendingBytes >= WRITE_BATCH_BYTES) await flush();
        opts.onProgress?.(have + pendingBytes, expected.length);
      }
      await flush();
      await fh.sync();
      return wrote;
    } catch (err) {
      if (stalled) throw new StallError(`no byte for ${stallMs} ms`);
      if (code(err)) throw err;
      // A cut connection: what was written stays and the next attempt resumes from it.
      throw err;
    } finally {
      timers.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Bytes already verified stay: the file must always hold exactly what the verifier has seen.
      await flush().catch(() => undefined);
      await fh.close();
      // A write interrupted mid-chunk cannot leave more than was verified: realign the file.
      const size = (await stat(partialPath).catch(() => ({ size: 0 }))).size;
      if (size > have) await truncate(partialPath, have);
      // The verifier saw bytes the disk refused: hash again what the file really holds.
      if (writeFailed) await hashPrefix();
    }
  }
}
