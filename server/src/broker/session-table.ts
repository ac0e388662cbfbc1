import type { Client } from 'aedes';

/**
 * Which connection currently speaks for each device. Kept here rather than read from aedes'
 * `clients` map because aedes can lose track during a takeover: when the old session is already
 * closing while the new one registers, the old session's late unregister deletes the new one.
 * One map entry per connected device; in-flight authentications are tracked only while they last.
 */
export class SessionTable {
  readonly #live = new Map<string, Client>();
  readonly #authenticating = new Map<string, Set<Client>>();
  // Sessions replaced by a newer connection of the same device: their last will is not published,
  // since the device is in fact online.
  readonly #superseded = new WeakSet<Client>();

  get size(): number {
    return this.#live.size;
  }

  current(deviceId: string): Client | undefined {
    return this.#live.get(deviceId);
  }

  beginAuth(deviceId: string, client: Client): void {
    let pending = this.#authenticating.get(deviceId);
    if (!pending) this.#authenticating.set(deviceId, (pending = new Set()));
    pending.add(client);
  }

  endAuth(deviceId: string, client: Client): void {
    const pending = this.#authenticating.get(deviceId);
    if (!pending) return;
    pending.delete(client);
    if (pending.size === 0) this.#authenticating.delete(deviceId);
  }

  authenticating(deviceId: string): Iterable<Client> {
    return this.#authenticating.get(deviceId) ?? [];
  }

  supersede(client: Client): void {
    this.#superseded.add(client);
  }

  isSuperseded(client: Client): boolean {
    return this.#superseded.has(client);
  }

  /** Records a session that completed its CONNECT; returns the session it replaced, if any. */
  ready(client: Client): Client | undefined {
    const previous = this.#live.get(client.id);
    this.#live.set(client.id, client);
    return previous === client ? undefined : previous;
  }

  /** Forgets a session; true when it was the device's current one (so the device went offline). */
  gone(client: Client): boolean {
    if (this.#live.get(client.id) !== client) return false;
    this.#live.delete(client.id);
    return true;
  }

  liveSessions(): IterableIterator<Client> {
    return this.#live.values();
  }
}
