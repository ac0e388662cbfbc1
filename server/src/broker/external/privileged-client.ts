/**
 * The server's own connection to the external broker: one mqtt.js client (MQTT 5, so a
 * subscription can ask for the retain flag as published), resubscribed on every reconnect.
 */
import { randomBytes } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';
import { connect } from 'mqtt';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';

export interface PrivilegedClientOptions {
  url: string;
  username: string;
  password: string;
  /** filters subscribed on every (re)connect, with retain-as-published */
  filters: readonly string[];
  /** bound on a publish waiting for the broker's PUBACK */
  requestTimeoutMs: number;
  logger: Logger;
  onMessage(topic: string, payload: Buffer, retain: boolean): void;
  /** after every successful (re)connect and subscribe */
  onReady(): void;
}

const CLOSE_DEADLINE_MS = 3_000;

export class PrivilegedClient {
  readonly #client: MqttClient;
  readonly #opts: PrivilegedClientOptions;
  #closing: Promise<void> | null = null;
  #firstReady: Promise<void>;
  #readyWaiters: Array<() => void> = [];

  private constructor(opts: PrivilegedClientOptions) {
    this.#opts = opts;
    // ':' never appears in a device id, so no device can take over the server's session.
    const clientId = `flotilla-server:${randomBytes(6).toString('hex')}`;
    this.#client = connect(opts.url, {
      clientId,
      username: opts.username,
      password: opts.password,
      protocolVersion: 5,
      clean: true,
      resubscribe: false,
      reconnectPeriod: 1_000,
      connectTimeout: opts.requestTimeoutMs,
      // Publishes while disconnected fail at once (see publish) instead of piling up in memory.
      queueQoSZero: false,
      manualConnect: true,
    });
    let resolveFirst!: () => void;
    this.#firstReady = new Promise((resolve) => (resolveFirst = resolve));
    this.#client.on('connect', () => {
      // mqtt.js opens its socket without TCP_NODELAY: every dynsec round trip then waits on
      // Nagle and delayed ACKs (about 5 times slower provisioning, measured against mosquitto 2.0.11).
      (this.#client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      const filters = Object.fromEntries(opts.filters.map((f) => [f, { qos: 1 as const, rap: true }]));
      this.#client.subscribe(filters, (err) => {
        if (err) {
          opts.logger.error({ err }, 'external broker refused the server subscriptions');
          return;
        }
        opts.logger.info({ url: opts.url }, 'connected to the external broker');
        resolveFirst();
        for (const wake of this.#readyWaiters.splice(0)) wake();
        opts.onReady();
      });
    });
    this.#client.on('message', (topic, payload, packet) => opts.onMessage(topic, payload, packet.retain));
    this.#client.on('error', (err) => opts.logger.warn({ err: err.message }, 'external broker connection error'));
    this.#client.on('offline', () => opts.logger.warn({ url: opts.url }, 'external broker unreachable; reconnecting'));
  }

  /** Starts connecting; the returned client keeps reconnecting until closed. */
  static start(opts: PrivilegedClientOptions): PrivilegedClient {
    const client = new PrivilegedClient(opts);
    client.#client.connect();
    return client;
  }

  /** Resolves once the first connection is up and subscribed. */
  ready(): Promise<void> {
    return this.#firstReady;
  }

  /** Resolves after the next reconnect is up and subscribed (the broker drops the server when its own account changes). */
  nextReady(): Promise<void> {
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  async publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    if (this.#closing) throw new FlotillaError('FLT_BROKER_UNAVAILABLE', 'the broker connection is closed');
    if (!this.#client.connected) throw new FlotillaError('FLT_BROKER_UNAVAILABLE', 'not connected to the external broker');
    const publishOpts: IClientPublishOptions = { qos: opts.qos, retain: opts.retain };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FlotillaError('FLT_BROKER_UNAVAILABLE', `no PUBACK for ${topic} within ${this.#opts.requestTimeoutMs} ms`)), this.#opts.requestTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([this.#client.publishAsync(topic, payload, publishOpts), deadline]);
    } catch (err) {
      if (err instanceof FlotillaError) throw err;
      throw new FlotillaError('FLT_BROKER_UNAVAILABLE', `publish to ${topic} failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Disconnects (gracefully, then by force after a deadline). Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#client.end(true, {}, () => resolve()), CLOSE_DEADLINE_MS);
      timer.unref();
      this.#client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.#closing;
  }
}
