/**
 * The pool worker's view of time. The batcher schedules in microseconds, so `now()` is a monotonic
 * clock in fractional milliseconds; tests pass a fake one and drive timers by hand.
 */
export interface TimerHandle {
  unref?(): unknown;
}

export interface PoolTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Reads the globals at call time, so vitest's fake timers apply to it as well. */
export const systemTimers: PoolTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
