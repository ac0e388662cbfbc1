/** Why a wait ended without its condition: the deadline passed or the demo was interrupted. */
export class WaitTimeout extends Error {
  constructor(what: string, timeoutMs: number, last: string) {
    super(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? `; last seen: ${last}` : ''}`);
    this.name = 'WaitTimeout';
  }
}

export interface WaitOptions {
  what: string;
  timeoutMs: number;
  /** Pause between polls; the condition, not this, decides when the wait ends. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** How the last value is described in the timeout message. */
  describe?: (value: unknown) => string;
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Polls `read` until `ok` accepts its value or the deadline passes. Every wait in the demo is one
 * of these: the machine may be slow, so nothing is assumed to be done after a fixed time.
 * A `read` that throws counts as "not yet" (a process still starting refuses connections).
 */
export async function waitFor<T>(read: () => Promise<T> | T, ok: (value: T) => boolean, opts: WaitOptions): Promise<T> {
  const end = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const value = await read();
      if (ok(value)) return value;
      last = value;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() >= end) {
      const text = opts.describe ? opts.describe(last) : typeof last === 'string' ? last : (JSON.stringify(last) ?? '');
      throw new WaitTimeout(opts.what, opts.timeoutMs, text.slice(0, 400));
    }
    await pause(opts.intervalMs ?? 200, opts.signal);
  }
}
