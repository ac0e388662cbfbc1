/**
 * Failed-authentication throttling, shared by REST (admin tokens, device Basic credentials,
 * enrollment tokens) and MQTT CONNECT. Secrets are 256-bit random, so guessing one is not the
 * risk; the throttle exists so that a guesser costs the server almost nothing (a refused attempt
 * never reaches the credential lookup) and shows up in metrics.
 *
 * Two counters, each a fixed window:
 * - per source address: past `perAddress` failures in the window the address is blocked for a
 *   backoff that doubles with every new block (up to `maxBlockMs`);
 * - per claimed identity (device id, token prefix): past `perIdentity` failures from anywhere,
 *   the identity is under attack and attempts for it are refused from every address that has
 *   failed recently. An address with no failures on record (the real device) still gets through,
 *   so an attacker elsewhere cannot lock a legitimate client out.
 * Memory is bounded: entries expire once idle, and past `maxEntries` the least recently touched go.
 */

export interface FailureThrottleOptions {
  windowMs: number;
  perAddress: number;
  perIdentity: number;
  blockMs: number;
  maxBlockMs: number;
  /** most addresses (and, separately, identities) tracked at once */
  maxEntries: number;
  /** addresses never counted nor refused (the server's own host by default) */
  exemptAddresses?: readonly string[];
  now: () => number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; reason: 'address' | 'identity'; retryAfterMs: number };

interface Counter {
  windowStart: number;
  failures: number;
  blockedUntil: number;
  /** blocks so far; each one doubles the next */
  strikes: number;
  lastFailure: number;
}

const ALLOWED: ThrottleVerdict = Object.freeze({ allowed: true });

export class FailureThrottle {
  readonly #opts: FailureThrottleOptions;
  readonly #exempt: ReadonlySet<string>;
  readonly #addresses = new Map<string, Counter>();
  readonly #identities = new Map<string, Counter>();

  constructor(opts: FailureThrottleOptions) {
    for (const key of ['windowMs', 'perAddress', 'perIdentity', 'blockMs', 'maxBlockMs', 'maxEntries'] as const) {
      if (!Number.isFinite(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be a positive number`);
    }
    this.#opts = opts;
    this.#exempt = new Set((opts.exemptAddresses ?? []).map(normalizeAddress));
  }

  /** May this address try to authenticate (as this identity) now? Call before checking the credential. */
  check(address: string, identity?: string | null): ThrottleVerdict {
    const addr = normalizeAddress(address);
    if (this.#exempt.has(addr)) return ALLOWED;
    const now = this.#opts.now();
    const byAddress = this.#live(this.#addresses, addr, now);
    if (byAddress && byAddress.blockedUntil > now) return { allowed: false, reason: 'address', retryAfterMs: byAddress.blockedUntil - now };
    if (identity) {
      const byIdentity = this.#live(this.#identities, identity, now);
      // Only addresses that have failed recently are held back on an identity under attack.
      if (byIdentity && byIdentity.blockedUntil > now && byAddress && now - byAddress.lastFailure < this.#opts.windowMs) {
        return { allowed: false, reason: 'identity', retryAfterMs: byIdentity.blockedUntil - now };
      }
    }
    return ALLOWED;
  }

  /** Records a failed attempt (bad or missing credential). */
  failed(address: string, identity?: string | null): void {
    const addr = normalizeAddress(address);
    if (this.#exempt.has(addr)) return;
    const now = this.#opts.now();
    this.#count(this.#addresses, addr, this.#opts.perAddress, now);
    if (identity) this.#count(this.#identities, identity, this.#opts.perIdentity, now);
  }

  /** Addresses and identities tracked now (for tests and the memory bound). */
  get size(): { addresses: number; identities: number } {
    return { addresses: this.#addresses.size, identities: this.#identities.size };
  }

  #count(map: Map<string, Counter>, key: string, limit: number, now: number): void {
    const { windowMs, blockMs, maxBlockMs } = this.#opts;
    let c = this.#live(map, key, now);
    if (c) {
      map.delete(key); // re-inserted below: Map order is least recently failed first
    } else {
      c = { windowStart: now, failures: 0, blockedUntil: 0, strikes: 0, lastFailure: now };
    }
    if (now - c.windowStart >= windowMs) {
      c.windowStart = now;
      c.failures = 0;
    }
    c.failures++;
    c.lastFailure = now;
    if (c.failures >= limit && c.blockedUntil <= now) {
      c.strikes++;
      c.blockedUntil = now + Math.min(blockMs * 2 ** Math.min(c.strikes - 1, 30), maxBlockMs);
      c.windowStart = now;
      c.failures = 0;
    }
    map.set(key, c);
    this.#evict(map);
  }

  /** The entry for key, or undefined once it has been idle long enough to forget (backoff included). */
  #live(map: Map<string, Counter>, key: string, now: number): Counter | undefined {
    const c = map.get(key);
    if (c && this.#expired(c, now)) {
      map.delete(key);
      return undefined;
    }
    return c;
  }

  #expired(c: Counter, now: number): boolean {
    return c.blockedUntil <= now && now - c.lastFailure >= this.#opts.windowMs + this.#opts.maxBlockMs;
  }

  #evict(map: Map<string, Counter>): void {
    // Map order is least recently failed first.
    for (const key of map.keys()) {
      if (map.size <= this.#opts.maxEntries) return;
      map.delete(key);
    }
  }
}

/** IPv4 clients on a dual-stack socket show up as `::ffff:a.b.c.d`; count them as `a.b.c.d`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
