import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeMessage, FlotillaError } from '@flotilla/protocol';
import { DROPPED_KIND, Outbox, type OutboxOptions } from '../src/outbox/outbox.ts';
import { OutboxSender } from '../src/outbox/sender.ts';
import { openAgentDatabase } from '../src/storage/database.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { silentLogger } from './helpers/logger.ts';
import { tempDir } from './helpers/temp-dir.ts';

function openOutbox(dir: string, opts: Partial<OutboxOptions> = {}) {
  const db = openAgentDatabase(dir);
  onTestFinished(() => {
    if (db.open) db.close();
  });
  const drops: number[] = [];
  const outbox = new Outbox(db, { maxEntries: 1000, maxBytes: 1024 * 1024, onDrop: (n) => drops.push(n), ...opts });
  return { db, outbox, drops };
}

describe('durable outbox', () => {
  it('assigns increasing seq numbers and unique ids, and keeps entries across a restart', () => {
    const dir = tempDir();
    const first = openOutbox(dir);
    const a = first.outbox.enqueue('model.installed', { model: 'digits', version: '1.0.0' });
    const b = first.outbox.enqueue('model.failed', { model: 'digits' });
    expect(b.entry.seq).toBeGreaterThan(a.entry.seq);
    expect(a.entry.id).not.toBe(b.entry.id);
    first.db.close();

    const second = openOutbox(dir);
    expect(second.outbox.all().map((e) => [e.seq, e.id, e.kind, e.data])).toEqual([
      [a.entry.seq, a.entry.id, 'model.installed', { model: 'digits', version: '1.0.0' }],
      [b.entry.seq, b.entry.id, 'model.failed', { model: 'digits' }],
    ]);
    expect(second.outbox.depth().entries).toBe(2);
    // seq is never reused, even once every entry was acknowledged.
    second.outbox.ack([a.entry.id, b.entry.id]);
    expect(second.outbox.enqueue('x', {}).entry.seq).toBeGreaterThan(b.entry.seq);
  });

  it('deletes only the acknowledged ids and ignores unknown ones', () => {
    const { outbox } = openOutbox(tempDir());
    const ids = [1, 2, 3].map((i) => outbox.enqueue('tick', { i }).entry.id);
    expect(outbox.ack([ids[1]!, 'unknown-id-123'])).toEqual([ids[1]]);
    expect(outbox.all().map((e) => e.id)).toEqual([ids[0], ids[2]]);
  });

  it('encodes each entry as a valid event envelope whose id and seq never change', () => {
    const { outbox } = openOutbox(tempDir());
    const { entry } = outbox.enqueue('rollout.step', { step: 2 });
    const decoded = decodeMessage('events', outbox.encode(entry));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.message.id).toBe(entry.id);
    expect(decoded.message.body).toEqual({ kind: 'rollout.step', seq: entry.seq, data: { step: 2 } });
    expect(outbox.encode(entry).equals(outbox.encode(entry))).toBe(true);
  });

  it('refuses events that do not fit the event schema, storing nothing', () => {
    const { outbox } = openOutbox(tempDir());
    expect(() => outbox.enqueue('Bad Kind', {})).toThrow(FlotillaError);
    expect(() => outbox.enqueue('big', { blob: 'x'.repeat(600 * 1024) })).toThrow(/larger than the outbox allows/);
    expect(outbox.depth().entries).toBe(0);
  });

  it('when full, drops the oldest low-priority entries first, counts them and records one outbox.dropped event', () => {
    const { outbox, drops } = openOutbox(tempDir(), { maxEntries: 16 });
    const high = outbox.enqueue('alert', { n: 0 }, { priority: 'high' }).entry;
    const lows = Array.from({ length: 5 }, (_, i) => outbox.enqueue('sample', { n: i }, { priority: 'low' }).entry);
    const normals = Array.from({ length: 10 }, (_, i) => outbox.enqueue('event', { n: i }).entry);
    expect(outbox.depth().entries).toBe(16);

    // Two more normal events: the two oldest low entries go, plus one more for the marker itself.
    outbox.enqueue('event', { n: 10 });
    outbox.enqueue('event', { n: 11 });
    const ids = outbox.all().map((e) => e.id);
    expect(outbox.depth().entries).toBe(16);
    expect(ids).toContain(high.id);
    expect(ids).not.toContain(lows[0]!.id);
    expect(ids).not.toContain(lows[1]!.id);
    expect(ids).not.toContain(lows[2]!.id);
    expect(ids).toContain(lows[3]!.id);
    for (const n of normals) expect(ids).toContain(n.id);

    const markers = outbox.all().filter((e) => e.kind === DROPPED_KIND);
    expect(markers).toHaveLength(1);
    expect(markers[0]!.data.count).toBe(3);
    expect(markers[0]!.priority).toBe('high');
    expect(drops.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('drops the new entry itself when it has the lowest priority of all, and says so', () => {
    const { outbox } = openOutbox(tempDir(), { maxEntries: 16 });
    for (let i = 0; i < 16; i++) outbox.enqueue('event', { i });
    const result = outbox.enqueue('sample', { late: true }, { priority: 'low' });
    expect(result.stored).toBe(false);
    expect(result.dropped).toBeGreaterThanOrEqual(1);
    expect(outbox.all().some((e) => e.id === result.entry.id)).toBe(false);
  });

  it('keeps a single running drop marker while it is unsent, and starts a new one once it was handed out', () => {
    const { outbox } = openOutbox(tempDir(), { maxEntries: 16 });
    for (let i = 0; i < 40; i++) outbox.enqueue('event', { i });
    let markers = outbox.all().filter((e) => e.kind === DROPPED_KIND);
    expect(markers).toHaveLength(1);
    const total = markers[0]!.data.count as number;
    expect(total).toBe(40 + 1 - 16);
    expect(outbox.depth().entries).toBe(16);

    outbox.next(0, 100); // the sender took everything: the marker is now sealed
    outbox.enqueue('event', { i: 40 });
    markers = outbox.all().filter((e) => e.kind === DROPPED_KIND);
    expect(markers.map((m) => m.data.count)).toEqual([total, 2]);
  });

  it('stays within maxBytes', () => {
    const { outbox } = openOutbox(tempDir(), { maxBytes: 64 * 1024 });
    for (let i = 0; i < 100; i++) outbox.enqueue('blob', { i, pad: 'x'.repeat(2000) });
    expect(outbox.depth().bytes).toBeLessThanOrEqual(64 * 1024);
    expect(outbox.all().filter((e) => e.kind === 'blob').at(-1)!.data.i).toBe(99);
  });
});

describe('outbox sender', () => {
  function setup(window: number) {
    const { outbox } = openOutbox(tempDir());
    const timers = new FakeTimers();
    const sender = new OutboxSender({ outbox, window, ackTimeoutMs: 30_000, timers, logger: silentLogger });
    onTestFinished(() => sender.close());
    const sent: { id: string; seq: number }[] = [];
    const publish = async (payload: Buffer): Promise<void> => {
      const d = decodeMessage('events', payload);
      if (!d.ok) throw new Error(d.code);
      sent.push({ id: d.message.id, seq: d.message.body.seq });
    };
    return { outbox, timers, sender, sent, publish };
  }

  it('keeps at most `window` events unacknowledged, in seq order, and moves on as acks arrive', () => {
    const { outbox, sender, sent, publish } = setup(3);
    const entries = Array.from({ length: 7 }, (_, i) => outbox.enqueue('e', { i }).entry);
    sender.online(publish);
    expect(sent.map((s) => s.seq)).toEqual(entries.slice(0, 3).map((e) => e.seq));
    sender.handleAck([entries[0]!.id, entries[1]!.id]);
    expect(sent.map((s) => s.seq)).toEqual(entries.slice(0, 5).map((e) => e.seq));
    expect(outbox.depth().entries).toBe(5);
  });

  it('replays everything unacknowledged from the lowest seq after a reconnect', () => {
    const { outbox, sender, sent, publish } = setup(10);
    const entries = Array.from({ length: 4 }, (_, i) => outbox.enqueue('e', { i }).entry);
    sender.online(publish);
    sender.handleAck([entries[1]!.id]);
    sender.offline();
    outbox.enqueue('e', { i: 4 });
    sent.length = 0;
    sender.online(publish);
    expect(sent.map((s) => s.id)).toEqual([entries[0]!.id, entries[2]!.id, entries[3]!.id, outbox.all().at(-1)!.id]);
  });

  it('publishes again, with the same id, what was not acknowledged within the ack timeout', () => {
    const { outbox, sender, sent, publish, timers } = setup(10);
    const { entry } = outbox.enqueue('e', {});
    sender.online(publish);
    timers.advance(29_999);
    expect(sent).toHaveLength(1);
    timers.advance(1);
    expect(sent.map((s) => s.id)).toEqual([entry.id, entry.id]);
    sender.handleAck([entry.id]);
    timers.advance(60_000);
    expect(sent).toHaveLength(2);
  });
});
