import { createHash } from 'node:crypto';
import { HARD_EXAMPLE_DIGEST_HEADER, hardExampleInputPath } from '@flotilla/protocol';
import type { Logger } from 'pino';
import { request } from 'undici';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/timers.ts';
import type { InputSpool } from './input-spool.ts';

/** The device's HTTP credential, once it has one (after enrollment). */
export type DeviceCredential = () => { deviceId: string; credential: string } | undefined;

export interface InputUploaderOptions {
  spool: InputSpool;
  /** The control server's base URL (https in production). */
  serverUrl: string;
  credential: DeviceCredential;
  timers?: Timers;
  logger?: Pick<Logger, 'warn' | 'debug'>;
  /** Wait after a failed pass, doubling up to `maxRetryMs` (defaults 1 s and 60 s). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Longest one upload may take (default 60 s). */
  requestTimeoutMs?: number;
}

export interface InputUploaderStats {
  /** Inputs the server stored (or already had). */
  uploaded: number;
  /** Inputs the server refused for good (too large, malformed, conflicting): dropped. */
  refused: number;
  /** Passes that stopped on a network error, a 401/403 or a 5xx, to be retried. */
  failures: number;
}

/**
 * Sends spooled hard-example inputs to the server (`PUT /v1/device/hard-examples/{id}/input`), one
 * at a time, oldest first. An input leaves the spool only when the server answered 200/201 (it has
 * the bytes, committed) or refused it for good (400, 409, 413); anything else (no network, server
 * down, credential not yet valid) ends the pass and a retry is armed with backoff. `kick()` starts
 * a pass at once: after every new input, and when the device reconnects.
 */
export class InputUploader {
  readonly #opts: InputUploaderOptions;
  readonly #timers: Timers;
  readonly #stats: InputUploaderStats = { uploaded: 0, refused: 0, failures: 0 };
  #running: Promise<void> | undefined;
  #again = false;
  #retry: TimerHandle | undefined;
  #backoff: number;
  #abort = new AbortController();
  #closed = false;

  constructor(opts: InputUploaderOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
    this.#backoff = opts.retryMs ?? 1000;
  }

  stats(): InputUploaderStats & { pending: number } {
    return { ...this.#stats, pending: this.#opts.spool.depth().inputs };
  }

  /** Uploads what waits, now; resolves when this pass (and any asked for meanwhile) ends. */
  kick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#clearRetry();
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#pass().catch((err: unknown) => {
          // A spool that cannot be read right now (disk trouble): try again later, keep the files.
          this.#stats.failures++;
          this.#opts.logger?.warn({ err: (err as Error).message }, 'hard-example input upload pass failed');
          this.#armRetry();
        });
        // A pass that failed armed its retry: asking again before it fires would only fail again.
      } while (this.#again && !this.#closed && !this.#retry);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops retrying and cuts an upload in flight (its input stays spooled). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearRetry();
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }

  async #pass(): Promise<void> {
    const { spool } = this.#opts;
    for (const id of spool.pending()) {
      if (this.#closed) return;
      const outcome = await this.#upload(id);
      if (outcome === 'retry') {
        this.#stats.failures++;
        this.#armRetry();
        return;
      }
      spool.remove(id);
      this.#stats[outcome]++;
    }
    this.#backoff = this.#opts.retryMs ?? 1000;
  }

  async #upload(requestId: string): Promise<'uploaded' | 'refused' | 'retry'> {
    const who = this.#opts.credential();
    if (!who) return 'retry';
    const body = this.#opts.spool.read(requestId);
    if (!body) return 'refused';
    const url = new URL(hardExampleInputPath(requestId), this.#opts.serverUrl);
    const timeout = this.#opts.requestTimeoutMs ?? 60_000;
    try {
      const res = await request(url, {
        method: 'PUT',
        headers: {
          authorization: `Basic ${Buffer.from(`${who.deviceId}:${who.credential}`).toString('base64')}`,
          'content-type': 'application/octet-stream',
          [HARD_EXAMPLE_DIGEST_HEADER]: createHash('sha256').update(body).digest('hex'),
        },
        body,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeout)]),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      const text = await res.body.text();
      if (res.statusCode === 200 || res.statusCode === 201) return 'uploaded';
      if (res.statusCode === 400 || res.statusCode === 409 || res.statusCode === 413) {
        this.#opts.logger?.warn({ requestId, status: res.statusCode, answer: text.slice(0, 200) }, 'hard-example input refused by the server; dropped');
        return 'refused';
      }
      this.#opts.logger?.debug({ requestId, status: res.statusCode }, 'hard-example input upload failed; will retry');
      return 'retry';
    } catch (err) {
      this.#opts.logger?.debug({ requestId, err: (err as Error).message }, 'hard-example input upload interrupted; will retry');
      return 'retry';
    }
  }

  #armRetry(): void {
    if (this.#closed || this.#retry) return;
    const wait = this.#backoff;
    this.#backoff = Math.min(wait * 2, this.#opts.maxRetryMs ?? 60_000);
    this.#retry = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      void this.kick();
    }, wait);
    // A pending retry must not keep the daemon alive on its own.
    this.#retry.unref?.();
  }

  #clearRetry(): void {
    if (this.#retry) this.#timers.clearTimeout(this.#retry);
    this.#retry = undefined;
  }
}
