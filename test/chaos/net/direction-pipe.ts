import type { Socket } from 'node:net';
import type { ProxyClock } from './clock.ts';
import type { Fault } from './faults.ts';
import { TokenBucket } from './token-bucket.ts';

/** Bytes held per direction before the source is paused, so a slow fault pushes back on the sender. */
const HIGH_WATER = 256 * 1024;

export interface PipeCounters {
  /** Bytes written to the destination. */
  delivered: number;
  /** Bytes swallowed by a breaking fault. */
  dropped: number;
}

/**
 * One direction of a proxied connection: chunks from `src` are queued and written to the
 * destination in arrival order, as the current fault allows. The destination may come later (the
 * target socket is still connecting); the queue holds until then.
 */
export class DirectionPipe {
  readonly counters: PipeCounters = { delivered: 0, dropped: 0 };
  readonly #queue: Array<{ buf: Buffer; dueAt: number }> = [];
  #queued = 0;
  #dst: Socket | undefined;
  #timer: unknown;
  #waitingDrain = false;
  #srcEnded = false;
  #dropping = false;
  #closed = false;
  #bucket: TokenBucket | undefined;
  #trickleAt = -Infinity;

  constructor(
    readonly src: Socket,
    readonly clock: ProxyClock,
    readonly fault: () => Fault,
  ) {
    src.on('data', (b: Buffer) => this.#push(b));
    src.on('end', () => {
      this.#srcEnded = true;
      this.kick();
    });
  }

  get queuedBytes(): number {
    return this.#queued;
  }

  /** From now on, every byte from `src` is swallowed (the connection was broken by a fault). */
  drop(): void {
    this.#dropping = true;
    for (const q of this.#queue) this.counters.dropped += q.buf.length;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#clearTimer();
    if (this.src.isPaused()) this.src.resume();
  }

  connect(dst: Socket): void {
    this.#dst = dst;
    this.kick();
  }

  close(): void {
    this.#closed = true;
    this.#clearTimer();
  }

  #push(b: Buffer): void {
    if (this.#dropping || this.#closed) {
      this.counters.dropped += b.length;
      return;
    }
    const f = this.fault();
    this.#queue.push({ buf: b, dueAt: this.clock.now() + (f.mode === 'latency' ? f.ms : 0) });
    this.#queued += b.length;
    if (this.#queued > HIGH_WATER) this.src.pause();
    this.kick();
  }

  /** Writes what the current fault lets through now, and sets a timer for the rest. */
  kick(): void {
    this.#clearTimer();
    const dst = this.#dst;
    if (this.#closed || this.#dropping || !dst || dst.destroyed || this.#waitingDrain) return;
    const now = this.clock.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.dueAt > now) return this.#wake(head.dueAt - now);
      const f = this.fault();
      let n = head.buf.length;
      if (f.mode === 'trickle') {
        if (now < this.#trickleAt + f.everyMs) return this.#wake(this.#trickleAt + f.everyMs - now);
        n = Math.min(n, f.bytes);
        this.#trickleAt = now;
      } else if (f.mode === 'bandwidth') {
        const burst = f.burstBytes ?? Math.max(1, Math.floor(f.bytesPerSec / 10));
        if (!this.#bucket || this.#bucket.rate !== f.bytesPerSec || this.#bucket.burst !== burst) this.#bucket = new TokenBucket(f.bytesPerSec, burst, this.clock);
        n = this.#bucket.take(n);
        if (n === 0) return this.#wake(this.#bucket.msUntilToken());
      }
      const out = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
      if (n === head.buf.length) this.#queue.shift();
      else head.buf = head.buf.subarray(n);
      this.#queued -= n;
      this.counters.delivered += n;
      const more = dst.write(out);
      if (this.src.isPaused() && this.#queued < HIGH_WATER / 2) this.src.resume();
      if (!more) {
        this.#waitingDrain = true;
        dst.once('drain', () => {
          this.#waitingDrain = false;
          this.kick();
        });
        return;
      }
      // A trickle sends one slice per tick.
      if (f.mode === 'trickle') return this.kick();
    }
    if (this.#srcEnded && !dst.writableEnded) dst.end();
  }

  #wake(ms: number): void {
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.kick();
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
