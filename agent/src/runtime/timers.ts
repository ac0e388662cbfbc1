/**
 * The agent's only view of time. Everything that waits (backoff, heartbeats, retry-after, ack
 * timeouts) goes through this seam so tests can drive it with a fake clock instead of sleeping.
 */
export interface TimerHandle {
  /** Keeps the process from exiting while the timer is pending when true (the default for setTimeout). */
  unref?(): unknown;
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Reads the globals at call time, so vitest's fake timers apply to it as well. */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/** Resolves after `ms` on the given timers, or at once when the signal aborts. */
export function sleep(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      resolve();
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
