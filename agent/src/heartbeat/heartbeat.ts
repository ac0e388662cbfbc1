import type { TimerHandle, Timers } from '../runtime/timers.ts';

/**
 * Calls `beat` every `intervalSec` while started. The interval can change at any time (desired
 * state `config.heartbeatSec`); the new one takes effect from the next beat.
 */
export class Heartbeat {
  readonly #timers: Timers;
  readonly #beat: () => void;
  #intervalSec: number;
  #timer: TimerHandle | undefined;
  #running = false;

  constructor(opts: { timers: Timers; intervalSec: number; beat: () => void }) {
    this.#timers = opts.timers;
    this.#intervalSec = opts.intervalSec;
    this.#beat = opts.beat;
  }

  get intervalSec(): number {
    return this.#intervalSec;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  setInterval(sec: number): void {
    if (sec === this.#intervalSec) return;
    this.#intervalSec = sec;
    if (this.#running) {
      this.stop();
      this.start();
    }
  }

  #schedule(): void {
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#running) return;
      this.#beat();
      this.#schedule();
    }, this.#intervalSec * 1000);
  }
}
