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

/** The longest delay one Node timer holds (about 24.8 days); Node fires a longer one after 1 ms. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * A wait longer than one Node timer can hold (a maintenance window weeks away): re-armed in steps of
 * at most MAX_TIMER_DELAY_MS until its deadline on the wall clock, so it fires when the deadline
 * comes rather than at once.
 */
class LongTimeout implements TimerHandle {
  readonly #fn: () => void;
  readonly #deadline: number;
  #timer: ReturnType<typeof globalThis.setTimeout> | undefined;
  #unref = false;

  constructor(fn: () => void, ms: number) {
    this.#fn = fn;
    this.#deadline = Date.now() + ms;
    this.#arm();
  }

  #arm(): void {
    const left = this.#deadline - Date.now();
    if (left <= 0) {
      this.#timer = undefined;
      this.#fn();
      return;
    }
    this.#timer = globalThis.setTimeout(() => this.#arm(), Math.min(left, MAX_TIMER_DELAY_MS));
    if (this.#unref) this.#timer.unref();
  }

  unref(): this {
    this.#unref = true;
    this.#timer?.unref();
    return this;
  }

  clear(): void {
    if (this.#timer !== undefined) globalThis.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Reads the globals at call time, so vitest's fake timers apply to it as well. */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => (ms > MAX_TIMER_DELAY_MS ? new LongTimeout(fn, ms) : globalThis.setTimeout(fn, ms)),
  clearTimeout: (handle) => {
    if (handle instanceof LongTimeout) handle.clear();
    else globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>);
  },
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
