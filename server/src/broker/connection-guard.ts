import { normalizeAddress } from '../auth/failure-throttle.ts';

export interface ConnectionGuardOptions {
  /** new connections one address may open per second */
  perSecond: number;
  /** connections one address may hold before their CONNACK */
  pending: number;
  exemptAddresses?: readonly string[];
  now: () => number;
}

interface AddressLoad {
  /** the second (now / 1000, floored) `opened` counts in */
  second: number;
  opened: number;
  pending: number;
}

/**
 * Connect-flood limit for the embedded broker, checked when a socket is accepted, before aedes
 * sees a byte: a source address may open `perSecond` connections a second and hold `pending`
 * connections that have not been answered (CONNACK) yet. A connection past either limit is closed
 * unanswered; other addresses are unaffected. An address is tracked only while it has pending
 * connections or opened one this second, so memory follows live sockets, not history.
 */
export class ConnectionGuard {
  readonly #opts: ConnectionGuardOptions;
  readonly #exempt: ReadonlySet<string>;
  readonly #load = new Map<string, AddressLoad>();
  #sweptSecond = 0;

  constructor(opts: ConnectionGuardOptions) {
    if (!(opts.perSecond >= 1) || !(opts.pending >= 1)) throw new RangeError('perSecond and pending must be at least 1');
    this.#opts = opts;
    this.#exempt = new Set((opts.exemptAddresses ?? []).map(normalizeAddress));
  }

  /** Counts a new connection from address; false means close it now (and do not call settled). */
  admit(address: string): boolean {
    const addr = normalizeAddress(address);
    if (this.#exempt.has(addr)) return true;
    const second = Math.floor(this.#opts.now() / 1000);
    this.#sweep(second);
    let load = this.#load.get(addr);
    if (!load) this.#load.set(addr, (load = { second, opened: 0, pending: 0 }));
    if (load.second !== second) {
      load.second = second;
      load.opened = 0;
    }
    if (load.opened >= this.#opts.perSecond || load.pending >= this.#opts.pending) return false;
    load.opened++;
    load.pending++;
    return true;
  }

  /** An admitted connection got its CONNACK or closed, whichever came first. */
  settled(address: string): void {
    const addr = normalizeAddress(address);
    const load = this.#load.get(addr);
    if (!load) return;
    load.pending = Math.max(0, load.pending - 1);
    if (load.pending === 0 && load.second !== Math.floor(this.#opts.now() / 1000)) this.#load.delete(addr);
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.#load.size;
  }

  /** Once a second at most: forget addresses with nothing pending and no connection this second. */
  #sweep(second: number): void {
    if (second === this.#sweptSecond) return;
    this.#sweptSecond = second;
    for (const [addr, load] of this.#load) {
      if (load.pending === 0 && load.second !== second) this.#load.delete(addr);
    }
  }
}
