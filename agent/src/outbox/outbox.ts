import type { Statement } from 'better-sqlite3';
import { FlotillaError, MAX_MQTT_PAYLOAD_BYTES, encodeMessage, newMessageId } from '@flotilla/protocol';
import type { AgentDatabase } from '../storage/database.ts';

export const OUTBOX_PRIORITIES = { low: 0, normal: 1, high: 2 } as const;
export type OutboxPriority = keyof typeof OUTBOX_PRIORITIES;

/** Kind of the event recorded when entries had to be dropped to stay within bounds. */
export const DROPPED_KIND = 'outbox.dropped';

export type EventData = Record<string, unknown>;

export interface OutboxEntry {
  /** Monotonic per device, never reused. */
  seq: number;
  /** Envelope id: the server's deduplication and acknowledgement key. */
  id: string;
  kind: string;
  data: EventData;
  priority: OutboxPriority;
  /** Encoded envelope size, what counts against maxBytes. */
  bytes: number;
  createdAt: number;
}

export interface EnqueueResult {
  entry: OutboxEntry;
  /** False when the new entry itself was the one dropped (it had the lowest priority of all). */
  stored: boolean;
  /** Entries dropped to make room, the new one included when `stored` is false. */
  dropped: number;
}

export interface OutboxOptions {
  maxEntries: number;
  maxBytes: number;
  now?: () => number;
  /** Told every time entries are dropped, with how many and their total bytes. */
  onDrop?: (count: number, bytes: number) => void;
}

interface Row {
  seq: number;
  id: string;
  kind: string;
  data: string;
  priority: number;
  bytes: number;
  created_at: number;
}

const PRIORITY_NAMES = Object.fromEntries(Object.entries(OUTBOX_PRIORITIES).map(([k, v]) => [v, k])) as Record<number, OutboxPriority>;

function toEntry(row: Row): OutboxEntry {
  return {
    seq: row.seq,
    id: row.id,
    kind: row.kind,
    data: JSON.parse(row.data) as EventData,
    priority: PRIORITY_NAMES[row.priority] ?? 'normal',
    bytes: row.bytes,
    createdAt: row.created_at,
  };
}

/**
 * The durable outbox: events that must reach the server, in SQLite. `enqueue` returns only after
 * its transaction committed; an entry leaves only when the server acknowledges its id (after the
 * server's own commit) or when the bounds force a drop, which is counted and itself reported as an
 * `outbox.dropped` event.
 *
 * Drop policy when over maxEntries or maxBytes: lowest priority first, oldest first within a
 * priority, the entry being added included. The pending `outbox.dropped` marker is never dropped.
 */
export class Outbox {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #db: AgentDatabase;
  readonly #now: () => number;
  readonly #onDrop: ((count: number, bytes: number) => void) | undefined;
  readonly #listeners = new Set<() => void>();
  /** Entries with seq <= this may already be on the wire: never rewrite them (their id is taken). */
  #sealedSeq: number;
  #entries: number;
  #bytes: number;

  readonly #insert: Statement;
  readonly #victim: Statement;
  readonly #deleteSeq: Statement;
  readonly #deleteId: Statement;
  readonly #after: Statement;
  readonly #openMarker: Statement;
  readonly #updateMarker: Statement;

  constructor(db: AgentDatabase, opts: OutboxOptions) {
    this.#db = db;
    this.maxEntries = opts.maxEntries;
    this.maxBytes = opts.maxBytes;
    this.#now = opts.now ?? Date.now;
    this.#onDrop = opts.onDrop;
    this.#insert = db.prepare('INSERT INTO outbox (id, kind, data, priority, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq');
    this.#victim = db.prepare('SELECT seq, bytes FROM outbox WHERE seq <> ? ORDER BY priority ASC, seq ASC LIMIT 1');
    this.#deleteSeq = db.prepare('DELETE FROM outbox WHERE seq = ?');
    this.#deleteId = db.prepare('DELETE FROM outbox WHERE id = ? RETURNING bytes');
    this.#after = db.prepare('SELECT * FROM outbox WHERE seq > ? ORDER BY seq ASC LIMIT ?');
    this.#openMarker = db.prepare('SELECT * FROM outbox WHERE kind = ? AND seq > ? ORDER BY seq DESC LIMIT 1');
    this.#updateMarker = db.prepare('UPDATE outbox SET data = ?, bytes = ? WHERE seq = ?');
    const totals = db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b, coalesce(max(seq), 0) AS m FROM outbox').get() as { n: number; b: number; m: number };
    this.#entries = totals.n;
    this.#bytes = totals.b;
    // After a restart, anything already stored may have been sent before the crash.
    this.#sealedSeq = totals.m;
  }

  /** Entries and encoded bytes waiting for an acknowledgement. */
  depth(): { entries: number; bytes: number } {
    return { entries: this.#entries, bytes: this.#bytes };
  }

  /**
   * Adds an event durably (committed before this returns). Throws FLT_AGENT_EVENT_INVALID when the
   * event does not fit the event schema or could never fit the outbox or one MQTT message.
   */
  enqueue(kind: string, data: EventData, opts: { priority?: OutboxPriority } = {}): EnqueueResult {
    const priority = opts.priority ?? 'normal';
    const id = newMessageId();
    const createdAt = this.#now();
    const bytes = encodedSize(kind, data, id, createdAt);
    if (bytes > MAX_MQTT_PAYLOAD_BYTES || bytes > this.maxBytes / 2) {
      throw new FlotillaError('FLT_AGENT_EVENT_INVALID', `event ${kind} is ${bytes} bytes, larger than the outbox allows`);
    }
    const result = this.#db.transaction((): EnqueueResult & { droppedBytes: number } => {
      const seq = (this.#insert.get(id, kind, JSON.stringify(data), OUTBOX_PRIORITIES[priority], bytes, createdAt) as { seq: number }).seq;
      this.#entries++;
      this.#bytes += bytes;
      const entry: OutboxEntry = { seq, id, kind, data, priority, bytes, createdAt };
      const { count, bytes: droppedBytes, self } = this.#evictOverflow(seq);
      return { entry, stored: !self, dropped: count, droppedBytes };
    })() as EnqueueResult & { droppedBytes: number };
    const { droppedBytes, ...out } = result;
    if (out.dropped > 0) this.#onDrop?.(out.dropped, droppedBytes);
    for (const listener of this.#listeners) listener();
    return out;
  }

  /** Deletes acknowledged entries; unknown ids (already deleted, from another life) are ignored. */
  ack(ids: readonly string[]): string[] {
    return this.#db.transaction(() => {
      const deleted: string[] = [];
      for (const id of ids) {
        const row = this.#deleteId.get(id) as { bytes: number } | undefined;
        if (!row) continue;
        this.#entries--;
        this.#bytes -= row.bytes;
        deleted.push(id);
      }
      return deleted;
    })();
  }

  /** Up to `limit` entries with seq > afterSeq, in seq order. What it returns is sealed: never rewritten. */
  next(afterSeq: number, limit: number): OutboxEntry[] {
    if (limit <= 0) return [];
    const rows = (this.#after.all(afterSeq, limit) as Row[]).map(toEntry);
    const last = rows[rows.length - 1];
    if (last && last.seq > this.#sealedSeq) this.#sealedSeq = last.seq;
    return rows;
  }

  /** Every stored entry in seq order (tests, diagnostics). */
  all(): OutboxEntry[] {
    return (this.#db.prepare('SELECT * FROM outbox ORDER BY seq ASC').all() as Row[]).map(toEntry);
  }

  /** The MQTT payload for an entry, identical on every resend. */
  encode(entry: OutboxEntry): Buffer {
    return encodeMessage('events', { kind: entry.kind, seq: entry.seq, data: entry.data }, { id: entry.id, ts: entry.createdAt }).payload;
  }

  /** Called after every enqueue (the sender uses it to start publishing at once). */
  onEnqueue(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #overBounds(): boolean {
    return this.#entries > this.maxEntries || this.#bytes > this.maxBytes;
  }

  /** Runs inside the enqueue transaction, after the new entry (seq `newSeq`) was inserted. */
  #evictOverflow(newSeq: number): { count: number; bytes: number; self: boolean } {
    let count = 0;
    let bytes = 0;
    let self = false;
    let marker = this.#openMarker.get(DROPPED_KIND, this.#sealedSeq) as Row | undefined;
    while (this.#overBounds()) {
      let roundCount = 0;
      let roundBytes = 0;
      while (this.#overBounds()) {
        const victim = this.#victim.get(marker?.seq ?? -1) as { seq: number; bytes: number } | undefined;
        if (!victim) break;
        this.#deleteSeq.run(victim.seq);
        this.#entries--;
        this.#bytes -= victim.bytes;
        roundCount++;
        roundBytes += victim.bytes;
        if (victim.seq === newSeq) self = true;
      }
      if (roundCount === 0) break;
      count += roundCount;
      bytes += roundBytes;
      marker = this.#recordDrops(marker, roundCount, roundBytes);
    }
    return { count, bytes, self };
  }

  /**
   * Keeps one unsent `outbox.dropped` marker carrying the running totals. A marker not yet handed
   * to the sender is updated in place, so a long offline spell leaves one marker rather than
   * thousands; once sealed (possibly on the wire), the next drop starts a new one.
   */
  #recordDrops(marker: Row | undefined, count: number, bytes: number): Row {
    const now = this.#now();
    if (marker) {
      const prev = JSON.parse(marker.data) as { count: number; bytes: number };
      const data = JSON.stringify({ count: prev.count + count, bytes: prev.bytes + bytes });
      const size = encodedSize(DROPPED_KIND, JSON.parse(data) as EventData, marker.id, marker.created_at);
      this.#updateMarker.run(data, size, marker.seq);
      this.#bytes += size - marker.bytes;
      return { ...marker, data, bytes: size };
    }
    const id = newMessageId();
    const data = JSON.stringify({ count, bytes });
    const size = encodedSize(DROPPED_KIND, { count, bytes }, id, now);
    const priority = OUTBOX_PRIORITIES.high;
    const seq = (this.#insert.get(id, DROPPED_KIND, data, priority, size, now) as { seq: number }).seq;
    this.#entries++;
    this.#bytes += size;
    return { seq, id, kind: DROPPED_KIND, data, priority, bytes: size, created_at: now };
  }
}

function encodedSize(kind: string, data: EventData, id: string, ts: number): number {
  try {
    // seq is not known before the insert; a large placeholder keeps the estimate on the safe side.
    return encodeMessage('events', { kind, seq: Number.MAX_SAFE_INTEGER, data }, { id, ts }).payload.byteLength;
  } catch (err) {
    throw new FlotillaError('FLT_AGENT_EVENT_INVALID', (err as Error).message);
  }
}
