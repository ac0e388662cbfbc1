import { connect, createServer, type Server, type Socket } from 'node:net';
import { systemClock, type ProxyClock } from './clock.ts';
import { DirectionPipe } from './direction-pipe.ts';
import { PASS, type Fault } from './faults.ts';

export interface FaultProxyOptions {
  target: { host: string; port: number };
  /** Listen address; the port is always chosen by the system. */
  host?: string;
  clock?: ProxyClock;
}

export interface FaultProxyStats {
  accepted: number;
  /** Connections broken by a fault (swallowed, orphaned, reset). */
  broken: number;
  resets: number;
  open: number;
  /** Bytes delivered and swallowed, client to target (up) and back (down). */
  up: { delivered: number; dropped: number };
  down: { delivered: number; dropped: number };
  /** Bytes accepted and not yet delivered (held by latency, trickle or bandwidth). */
  queued: number;
}

/** One client connection and, unless a fault prevented it, its connection to the target. */
class ProxiedConnection {
  readonly up: DirectionPipe;
  readonly down: DirectionPipe | undefined;
  target: Socket | undefined;
  broken = false;

  constructor(
    readonly client: Socket,
    clock: ProxyClock,
    fault: () => Fault,
    target: { host: string; port: number } | undefined,
  ) {
    this.up = new DirectionPipe(client, clock, fault);
    if (!target) {
      this.down = undefined;
      return;
    }
    const t = connect({ host: target.host, port: target.port, noDelay: true });
    this.target = t;
    this.down = new DirectionPipe(t, clock, fault);
    this.down.connect(client);
    t.on('connect', () => this.up.connect(t));
    // A close on one side closes the other, unless a fault already decided what each side sees.
    t.on('error', () => undefined);
    t.on('close', () => {
      if (!this.broken) client.destroy();
    });
    client.on('close', () => {
      if (!this.broken) t.destroy();
    });
  }

  /** Nothing more is forwarded either way; no socket is closed. */
  swallow(): void {
    this.broken = true;
    this.up.drop();
    this.down?.drop();
  }

  orphan(side: 'client' | 'target'): void {
    this.swallow();
    if (side === 'client') this.target?.destroy();
    else this.client.destroy();
  }

  oneWay(drop: 'up' | 'down'): void {
    this.broken = true;
    if (drop === 'up') this.up.drop();
    else this.down?.drop();
  }

  reset(): void {
    this.broken = true;
    this.up.close();
    this.down?.close();
    for (const s of [this.client, this.target]) {
      if (!s || s.destroyed) continue;
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
  }

  kick(): void {
    this.up.kick();
    this.down?.kick();
  }

  destroy(): void {
    this.up.close();
    this.down?.close();
    this.client.destroy();
    this.target?.destroy();
  }
}

/**
 * A TCP proxy on loopback that forwards to one target, with a fault that can be switched at any
 * time (test/chaos/net/faults.ts). Chaos runs put one in front of each link they want to break.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #clock: ProxyClock;
  readonly #target: { host: string; port: number };
  readonly #conns = new Set<ProxiedConnection>();
  #fault: Fault = PASS;
  #port = 0;
  #closing: Promise<void> | undefined;
  readonly #totals = { accepted: 0, broken: 0, resets: 0, up: { delivered: 0, dropped: 0 }, down: { delivered: 0, dropped: 0 } };

  private constructor(opts: FaultProxyOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#target = opts.target;
    this.#server = createServer({ noDelay: true }, (s) => this.#accept(s));
  }

  static async listen(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts);
    await new Promise<void>((resolve, reject) => {
      p.#server.once('error', reject);
      p.#server.listen(0, opts.host ?? '127.0.0.1', () => resolve());
    });
    p.#port = (p.#server.address() as { port: number }).port;
    return p;
  }

  get port(): number {
    return this.#port;
  }

  get fault(): Fault {
    return this.#fault;
  }

  /** Switches the fault for every open connection and every later one. */
  setFault(f: Fault): void {
    this.#fault = f;
    for (const c of this.#conns) {
      if (c.broken) continue;
      this.#applyBreak(c, f);
      c.kick();
    }
  }

  clear(): void {
    this.setFault(PASS);
  }

  stats(): FaultProxyStats {
    const s = { ...this.#totals, up: { ...this.#totals.up }, down: { ...this.#totals.down }, open: this.#conns.size, queued: 0 };
    for (const c of this.#conns) {
      s.up.delivered += c.up.counters.delivered;
      s.up.dropped += c.up.counters.dropped;
      s.down.delivered += c.down?.counters.delivered ?? 0;
      s.down.dropped += c.down?.counters.dropped ?? 0;
      s.queued += c.up.queuedBytes + (c.down?.queuedBytes ?? 0);
    }
    return s;
  }

  /** Stops listening and destroys every connection. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const c of this.#conns) c.destroy();
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }

  #accept(client: Socket): void {
    this.#totals.accepted++;
    client.on('error', () => undefined);
    const f = this.#fault;
    if (f.mode === 'reset') {
      this.#totals.resets++;
      try {
        client.resetAndDestroy();
      } catch {
        client.destroy();
      }
      return;
    }
    // Under a breaking fault a new connection never reaches the target.
    const reaches = f.mode === 'pass' || f.mode === 'latency' || f.mode === 'trickle' || f.mode === 'bandwidth';
    const c = new ProxiedConnection(client, this.#clock, () => this.#fault, reaches ? this.#target : undefined);
    this.#conns.add(c);
    if (!reaches) {
      c.swallow();
      this.#totals.broken++;
    }
    // Tracked until both sides closed: an orphaned side stays open after its peer is gone.
    let open = c.target ? 2 : 1;
    const closed = (): void => {
      if (--open > 0) return;
      this.#conns.delete(c);
      this.#fold(c);
    };
    client.on('close', closed);
    c.target?.on('close', closed);
  }

  #applyBreak(c: ProxiedConnection, f: Fault): void {
    switch (f.mode) {
      case 'blackhole':
        c.swallow();
        break;
      case 'half-open':
        c.orphan(f.orphan);
        break;
      case 'one-way':
        c.oneWay(f.drop);
        break;
      case 'reset':
        this.#totals.resets++;
        c.reset();
        break;
      default:
        return;
    }
    this.#totals.broken++;
  }

  /** Keeps a closed connection's byte counts in the totals. */
  #fold(c: ProxiedConnection): void {
    this.#totals.up.delivered += c.up.counters.delivered;
    this.#totals.up.dropped += c.up.counters.dropped;
    this.#totals.down.delivered += c.down?.counters.delivered ?? 0;
    this.#totals.down.dropped += c.down?.counters.dropped ?? 0;
  }
}
