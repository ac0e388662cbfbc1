import type { RolloutEngine } from './engine.ts';

export interface SchedulerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setImmediate(fn: () => void): unknown;
}

const realTimers: SchedulerTimers = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setImmediate: (fn) => setImmediate(fn),
};

/**
 * Drives the engine in the real server: a tick every `intervalMs` (bake ends, timeouts, rate
 * budget, windows) plus one soon after anything the engine reports as new work (a device report,
 * a command), coalesced so a burst of reports costs one tick. Tests call `engine.tick()` directly.
 */
export class RolloutScheduler {
  readonly #engine: RolloutEngine;
  readonly #timers: SchedulerTimers;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  #handle: unknown = null;
  #soon = false;
  #closed = false;

  constructor(engine: RolloutEngine, opts: { intervalMs?: number; timers?: SchedulerTimers; onError?: (err: unknown) => void } = {}) {
    this.#engine = engine;
    this.#timers = opts.timers ?? realTimers;
    this.#intervalMs = opts.intervalMs ?? 250;
    this.#onError = opts.onError ?? (() => {});
  }

  start(): void {
    if (this.#handle !== null || this.#closed) return;
    this.#engine.onWork = () => this.nudge();
    this.#handle = this.#timers.setInterval(() => this.#run(), this.#intervalMs);
  }

  /** Runs a tick on the next turn of the event loop (once, however often it is called before). */
  nudge(): void {
    if (this.#soon || this.#closed) return;
    this.#soon = true;
    this.#timers.setImmediate(() => {
      this.#soon = false;
      this.#run();
    });
  }

  #run(): void {
    if (this.#closed) return;
    try {
      this.#engine.tick();
    } catch (err) {
      this.#onError(err);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine.onWork = null;
    if (this.#handle !== null) this.#timers.clearInterval(this.#handle);
    this.#handle = null;
  }
}
