import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/agent-process.ts';
import { ManualClock } from './clock.ts';
import { FaultProxy } from './fault-proxy.ts';
import { TokenBucket } from './token-bucket.ts';

/** A target that keeps what each connection sent and can answer on it. */
interface Target {
  server: Server;
  port: number;
  conns: Array<{ socket: Socket; got: Buffer; closed: boolean }>;
}

async function target(): Promise<Target> {
  const t: Target = { server: createServer(), port: 0, conns: [] };
  t.server.on('connection', (socket) => {
    const c = { socket, got: Buffer.alloc(0), closed: false };
    t.conns.push(c);
    socket.on('data', (b: Buffer) => (c.got = Buffer.concat([c.got, b])));
    socket.on('error', () => undefined);
    socket.on('close', () => (c.closed = true));
  });
  await new Promise<void>((r) => t.server.listen(0, '127.0.0.1', r));
  t.port = (t.server.address() as { port: number }).port;
  return t;
}

interface Client {
  socket: Socket;
  got: () => Buffer;
  error: () => NodeJS.ErrnoException | undefined;
  closed: () => boolean;
}

async function client(port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port });
  let got = Buffer.alloc(0);
  let error: NodeJS.ErrnoException | undefined;
  let closed = false;
  socket.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
  socket.on('error', (e) => (error = e));
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, got: () => got, error: () => error, closed: () => closed };
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(clock?: ManualClock): Promise<{ t: Target; proxy: FaultProxy }> {
  const t = await target();
  cleanup.push(() => new Promise((r) => t.server.close(r)), () => t.conns.forEach((c) => c.socket.destroy()));
  const proxy = await FaultProxy.listen({ target: { host: '127.0.0.1', port: t.port }, ...(clock && { clock }) });
  cleanup.push(() => proxy.close());
  return { t, proxy };
}

async function connected(proxy: FaultProxy, t: Target): Promise<{ c: Client; far: Target['conns'][number] }> {
  const c = await client(proxy.port);
  cleanup.push(() => c.socket.destroy());
  const n = t.conns.length;
  await eventually(() => t.conns.length, (k) => k > n, { what: 'target connection' });
  return { c, far: t.conns.at(-1)! };
}

describe('fault proxy', () => {
  it('forwards bytes both ways in order when passing', async () => {
    const { t, proxy } = await setup();
    const { c, far } = await connected(proxy, t);
    c.socket.write('hello ');
    c.socket.write('flotilla');
    await eventually(() => far.got.toString(), (s) => s === 'hello flotilla', { what: 'bytes at the target' });
    far.socket.write('ack');
    await eventually(() => c.got().toString(), (s) => s === 'ack', { what: 'bytes back at the client' });
    expect(proxy.stats().up.delivered).toBe(14);
  });

  it('holds every chunk for the latency, each direction, and delivers them in order once it has passed', async () => {
    const clock = new ManualClock();
    const { t, proxy } = await setup(clock);
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'latency', ms: 500 });
    c.socket.write('abc');
    await eventually(() => proxy.stats().queued, (q) => q === 3, { what: 'first chunk held' });
    clock.advance(250);
    c.socket.write('def');
    await eventually(() => proxy.stats().queued, (q) => q === 6, { what: 'second chunk held' });
    expect(far.got.length).toBe(0);
    clock.advance(250);
    await eventually(() => far.got.toString(), (s) => s === 'abc', { what: 'first chunk after its latency' });
    expect(proxy.stats().queued).toBe(3);
    clock.advance(250);
    await eventually(() => far.got.toString(), (s) => s === 'abcdef', { what: 'both chunks in order' });
    far.socket.write('xyz');
    await eventually(() => proxy.stats().queued, (q) => q === 3, { what: 'reply held' });
    expect(c.got().length).toBe(0);
    clock.advance(500);
    await eventually(() => c.got().toString(), (s) => s === 'xyz', { what: 'reply after its latency' });
  });

  it('swallows everything in a blackhole, keeps the sockets open, and passes new connections once cleared', async () => {
    const { t, proxy } = await setup();
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'blackhole' });
    c.socket.write('lost');
    far.socket.write('lost too');
    await eventually(() => proxy.stats(), (s) => s.up.dropped === 4 && s.down.dropped === 8, { what: 'bytes swallowed' });
    // A connection made during the blackhole is accepted but never reaches the target.
    const late = await client(proxy.port);
    cleanup.push(() => late.socket.destroy());
    late.socket.write('nobody hears');
    await eventually(() => proxy.stats().up.dropped, (d) => d === 16, { what: 'late bytes swallowed' });
    expect(t.conns.length).toBe(1);
    expect(far.got.length).toBe(0);
    expect(c.got().length).toBe(0);
    expect([c.closed(), late.closed(), far.closed]).toEqual([false, false, false]);

    proxy.clear();
    // The swallowed connection stays dead; a new one works.
    c.socket.write('still lost');
    const { c: fresh, far: freshFar } = await connected(proxy, t);
    fresh.socket.write('back');
    await eventually(() => freshFar.got.toString(), (s) => s === 'back', { what: 'new connection passes' });
    expect(far.got.length).toBe(0);
  });

  it('resets both sides: the client sees ECONNRESET, and connections made during the fault are reset at once', async () => {
    const { t, proxy } = await setup();
    const { c } = await connected(proxy, t);
    proxy.setFault({ mode: 'reset' });
    await eventually(() => c.error()?.code, (code) => code !== undefined, { what: 'client error' });
    expect(c.error()?.code).toBe('ECONNRESET');
    const late = connect({ host: '127.0.0.1', port: proxy.port });
    const code = await new Promise<string | undefined>((r) => {
      late.on('error', (e: NodeJS.ErrnoException) => r(e.code));
      late.on('close', () => r('closed without error'));
    });
    expect(code).toBe('ECONNRESET');
    expect(proxy.stats().resets).toBe(2);
  });

  it('leaves an orphaned client open and unanswered while the target sees its connection close', async () => {
    const { t, proxy } = await setup();
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'half-open', orphan: 'client' });
    await eventually(() => far.closed, (x) => x, { what: 'target side closed' });
    c.socket.write('into the void');
    await eventually(() => proxy.stats().up.dropped, (d) => d === 13, { what: 'orphan bytes swallowed' });
    expect(c.closed()).toBe(false);
    expect(c.error()).toBeUndefined();
  });

  it('leaves an orphaned target open while the client sees its connection close', async () => {
    const { t, proxy } = await setup();
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'half-open', orphan: 'target' });
    await eventually(() => c.closed(), (x) => x, { what: 'client side closed' });
    far.socket.write('nobody reads this');
    await eventually(() => proxy.stats().down.dropped, (d) => d === 17, { what: 'target bytes swallowed' });
    expect(far.closed).toBe(false);
  });

  it('stops one direction and keeps the other flowing', async () => {
    const { t, proxy } = await setup();
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'one-way', drop: 'up' });
    c.socket.write('dropped');
    far.socket.write('flows');
    await eventually(() => c.got().toString(), (s) => s === 'flows', { what: 'down direction flows' });
    await eventually(() => proxy.stats().up.dropped, (d) => d === 7, { what: 'up direction dropped' });
    expect(far.got.length).toBe(0);
  });

  it('trickles a few bytes per tick, in order', async () => {
    const clock = new ManualClock();
    const { t, proxy } = await setup(clock);
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'trickle', bytes: 4, everyMs: 100 });
    const payload = 'abcdefghijklmnopqrst';
    c.socket.write(payload);
    // The first slice goes at once, then one per tick.
    await eventually(() => far.got.length, (n) => n === 4, { what: 'first slice' });
    for (let k = 2; k <= 5; k++) {
      await eventually(() => proxy.stats().queued, (q) => q === payload.length - (k - 1) * 4, { what: 'slice accounted' });
      clock.advance(100);
      await eventually(() => far.got.length, (n) => n === k * 4, { what: `slice ${k}` });
    }
    expect(far.got.toString()).toBe(payload);
  });

  it('caps bandwidth: the bytes through never exceed the rate times the time plus one burst', async () => {
    const clock = new ManualClock();
    const { t, proxy } = await setup(clock);
    const { c, far } = await connected(proxy, t);
    proxy.setFault({ mode: 'bandwidth', bytesPerSec: 1000, burstBytes: 100 });
    const payload = Buffer.alloc(3000, 7);
    c.socket.write(payload);
    await eventually(() => proxy.stats().queued + far.got.length, (n) => n === payload.length, { what: 'payload at the proxy' });
    await eventually(() => far.got.length, (n) => n === 100, { what: 'the burst' });
    for (let ms = 100; ms <= 1000; ms += 100) {
      clock.advance(100);
      // Exactly one refill of 100 bytes per 100 ms once the bucket is empty.
      await eventually(() => far.got.length, (n) => n === 100 + ms, { what: `bytes at ${ms} ms` });
    }
    proxy.clear();
    await eventually(() => far.got.length, (n) => n === payload.length, { what: 'the rest once the cap is lifted' });
  });

  it('closes twice without complaint', async () => {
    const { proxy } = await setup();
    await proxy.close();
    await proxy.close();
  });
});

describe('token bucket', () => {
  it('grants no more than the rate over time plus the burst', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(1000, 50, clock);
    let granted = 0;
    for (let i = 0; i < 100; i++) {
      granted += b.take(1000);
      clock.advance(10);
    }
    // 1 s of refills (1000) plus the initial burst (50), less the last tick's refill never taken.
    expect(granted).toBeLessThanOrEqual(1050);
    expect(granted).toBeGreaterThanOrEqual(1000);
    expect(b.take(1)).toBe(1);
    expect(b.take(1000)).toBe(9);
    expect(b.msUntilToken()).toBe(1);
  });
});
