import type { TimerHandle, Timers } from '../../src/runtime/timers.ts';

interface Pending {
  at: number;
  ms: number;
  fn: () => void;
  handle: TimerHandle;
}

/**
 * A manual clock for the agent's Timers seam: nothing fires until the test advances time.
 * `nextTimer()` waits until the code under test schedules something, so tests can see the delay
 * it chose without sleeping.
 */
export class FakeTimers implements Timers {
  #now: number;
  #pending: Pending[] = [];
  #waiters: Array<(p: { ms: number }) => void> = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now = (): number => this.#now;

  setTimeout = (fn: () => void, ms: number): TimerHandle => {
    const handle: TimerHandle = {};
    this.#pending.push({ at: this.#now + ms, ms, fn, handle });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w({ ms });
    return handle;
  };

  clearTimeout = (handle: TimerHandle): void => {
    this.#pending = this.#pending.filter((p) => p.handle !== handle);
  };

  get pendingDelays(): number[] {
    return this.#pending.map((p) => p.ms);
  }

  /** Resolves with the delay of the next timer scheduled from now on (or one already pending, if asked). */
  nextTimer(): Promise<{ ms: number }> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Moves the clock forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#pending.sort((a, b) => a.at - b.at);
      const next = this.#pending[0];
      if (!next || next.at > target) break;
      this.#pending.shift();
      this.#now = next.at;
      next.fn();
    }
    this.#now = target;
  }
}
