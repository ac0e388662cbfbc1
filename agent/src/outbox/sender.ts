import type { Logger } from 'pino';
import type { Timers, TimerHandle } from '../runtime/timers.ts';
import type { Outbox } from './outbox.ts';

/** Publishes one encoded event envelope on the device's events topic at QoS 1. */
export type EventPublish = (payload: Buffer) => Promise<void>;

export interface OutboxSenderOptions {
  outbox: Outbox;
  /** Most events published and not yet acknowledged at once. */
  window: number;
  /** An unacknowledged event is published again after this long. */
  ackTimeoutMs: number;
  timers: Timers;
  logger: Logger;
}

interface InFlight {
  seq: number;
  sentAt: number;
}

/**
 * Drains the outbox over the events channel: in seq order, at most `window` unacknowledged at a
 * time. A QoS 1 PUBACK only says the broker got it; entries leave the outbox on the server's
 * application-level ack. Every (re)connect replays everything still stored, from the lowest seq.
 */
export class OutboxSender {
  readonly #opts: OutboxSenderOptions;
  readonly #inflight = new Map<string, InFlight>();
  #publish: EventPublish | undefined;
  #cursor = 0;
  #timer: TimerHandle | undefined;
  #unsubscribe: () => void;
  #closed = false;

  constructor(opts: OutboxSenderOptions) {
    this.#opts = opts;
    this.#unsubscribe = opts.outbox.onEnqueue(() => this.pump());
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** The connection is up: forget what was in flight on the old one and replay from the start. */
  online(publish: EventPublish): void {
    if (this.#closed) return;
    this.#publish = publish;
    this.#inflight.clear();
    this.#cursor = 0;
    this.pump();
  }

  offline(): void {
    this.#publish = undefined;
    this.#inflight.clear();
    this.#clearTimer();
  }

  /** The server committed these ids: delete them and let the window move on. */
  handleAck(ids: readonly string[]): void {
    const deleted = this.#opts.outbox.ack(ids);
    for (const id of ids) this.#inflight.delete(id);
    if (deleted.length < ids.length) this.#opts.logger.debug({ acked: ids.length, deleted: deleted.length }, 'ack named ids no longer stored');
    if (this.#inflight.size === 0) this.#clearTimer();
    this.pump();
  }

  /** Fills the window with the next entries in seq order. */
  pump(): void {
    const publish = this.#publish;
    if (!publish || this.#closed) return;
    const free = this.#opts.window - this.#inflight.size;
    if (free <= 0) return;
    const now = this.#opts.timers.now();
    for (const entry of this.#opts.outbox.next(this.#cursor, free)) {
      this.#cursor = entry.seq;
      this.#inflight.set(entry.id, { seq: entry.seq, sentAt: now });
      this.#send(publish, this.#opts.outbox.encode(entry), entry.seq);
    }
    this.#armTimer();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.offline();
    this.#unsubscribe();
  }

  #send(publish: EventPublish, payload: Buffer, seq: number): void {
    publish(payload).catch((err: unknown) => {
      // The connection went away; the entry is still stored and is replayed on the next connect.
      this.#opts.logger.debug({ seq, err: (err as Error).message }, 'event publish interrupted');
    });
  }

  #armTimer(): void {
    if (this.#timer || this.#inflight.size === 0) return;
    this.#timer = this.#opts.timers.setTimeout(() => {
      this.#timer = undefined;
      this.#resendExpired();
    }, this.#opts.ackTimeoutMs);
  }

  #clearTimer(): void {
    if (this.#timer) this.#opts.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Publishes again, with the same id, whatever waited past the ack timeout; the server deduplicates. */
  #resendExpired(): void {
    const publish = this.#publish;
    if (!publish) return;
    const now = this.#opts.timers.now();
    const expired = [...this.#inflight.entries()].filter(([, f]) => now - f.sentAt >= this.#opts.ackTimeoutMs);
    if (expired.length > 0) {
      const bySeq = new Map(this.#opts.outbox.next(expired[0]![1].seq - 1, this.#opts.window).map((e) => [e.id, e]));
      for (const [id, f] of expired) {
        const entry = bySeq.get(id);
        if (!entry) {
          this.#inflight.delete(id);
          continue;
        }
        f.sentAt = now;
        this.#send(publish, this.#opts.outbox.encode(entry), entry.seq);
      }
      this.#opts.logger.warn({ resent: expired.length }, 'events not acknowledged in time, published again');
    }
    this.#armTimer();
  }
}
