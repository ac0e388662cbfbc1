import { boundDrainDepth } from './drain-depth.ts';
import { indexRetained, type RetainedPersistence } from './retained-index.ts';
import { Aedes } from 'aedes';
import type { AedesOptions, Client } from 'aedes';
import { MAX_MQTT_PAYLOAD_BYTES } from '@flotilla/protocol';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { createPolicyHooks, safely } from './hooks.ts';
import { BrokerMetrics } from './metrics.ts';
import { PacketTooLargeError, packetSizeGuard, releaseConnectPacket } from './parser-tuning.ts';
import type { PacketGuard } from './parser-tuning.ts';
import { SessionTable } from './session-table.ts';
import { listenTcp } from './tcp-listener.ts';
import type { BoundListener } from './tcp-listener.ts';
import { listenWs } from './ws-listener.ts';
import { ConnectionGuard } from './connection-guard.ts';
import type { FailureThrottle } from '../auth/failure-throttle.ts';
import type { BrokerEvents, DeviceAuthenticator } from './types.ts';

export interface FleetBrokerOptions {
  auth: DeviceAuthenticator;
  events: BrokerEvents;
  logger: Logger;
  /** where the flotilla_broker_* metrics go; a private registry when left out */
  registry?: Registry;
  /** largest PUBLISH (and will) payload a device may send; defaults to the protocol limit */
  maxPayloadBytes?: number;
  /** abuse guards (docs/operations.md "Abuse guards"); each one is off when left out */
  guards?: BrokerGuards;
}

export interface BrokerGuards {
  /** failed-CONNECT throttling, shared with the REST API's */
  throttle?: FailureThrottle;
  /** connect-flood limits per source address */
  connects?: { perSecond: number; pending: number; exemptAddresses?: readonly string[] };
  /** a client that stops reading is disconnected once this many bytes wait to be written to it */
  maxOutgoingBufferBytes?: number;
  now?: () => number;
}

export interface ListenOptions {
  host: string;
  /** 0 picks a free port */
  tcpPort: number;
  /** WebSocket listener on path /mqtt; null or left out for none, 0 picks a free port */
  wsPort?: number | null;
}

export interface BoundPorts {
  tcpPort: number;
  wsPort: number | null;
}

// Room for the fixed and variable headers (topic, message id) on top of the payload limit.
const PACKET_HEADER_ALLOWANCE = 1024;
const CLOSE_DEADLINE_MS = 5_000;

/** aedes fields used here that its typings do not declare. */
interface AedesInternals {
  clients: Record<string, Client | undefined>;
  persistence: { cleanIncoming?: (client: Client) => Promise<void> };
}

/**
 * The embedded MQTT broker with Flotilla's device policy: every device authenticates, and may
 * publish and subscribe only under its own topic prefix. See docs/mqtt.md for the rules.
 */
export class FleetBroker {
  readonly #aedes: Aedes;
  readonly #internals: AedesInternals;
  readonly #sessions: SessionTable;
  readonly #events: BrokerEvents;
  readonly #logger: Logger;
  readonly #guardPacketSize: PacketGuard;
  readonly #maxPacketBytes: number;
  readonly #listeners: BoundListener[] = [];
  readonly #metrics: BrokerMetrics;
  readonly #connectGuard: ConnectionGuard | null;
  /** source address of each connection, for the throttle and the flood guard */
  readonly #addresses = new WeakMap<Client, string>();
  /** admitted connections not yet answered, and the address the flood guard counted them under */
  readonly #pending = new WeakMap<Duplex, string>();
  readonly #settle: (conn: Duplex) => void;
  readonly #onPendingClose: (this: Duplex) => void;
  /** One 'close' listener shared by every connection (`this` is the stream, aedes set `.client`). */
  readonly #onConnClose: (this: Duplex & { client?: Client }) => void;
  #listening = false;
  #retained: { size(): number } = { size: () => 0 };
  #closing: Promise<void> | null = null;

  private constructor(
    aedes: Aedes,
    sessions: SessionTable,
    opts: FleetBrokerOptions,
    maxPacketBytes: number,
    metrics: BrokerMetrics,
    addresses: WeakMap<Client, string>,
  ) {
    this.#aedes = aedes;
    this.#internals = aedes as unknown as AedesInternals;
    this.#sessions = sessions;
    this.#events = opts.events;
    this.#logger = opts.logger;
    this.#maxPacketBytes = maxPacketBytes;
    this.#guardPacketSize = packetSizeGuard(maxPacketBytes);
    this.#metrics = metrics;
    this.#addresses = addresses;
    const connects = opts.guards?.connects;
    this.#connectGuard = connects ? new ConnectionGuard({ ...connects, now: opts.guards?.now ?? Date.now }) : null;
    const pending = this.#pending;
    const guard = this.#connectGuard;
    this.#settle = (conn) => {
      const address = pending.get(conn);
      if (address === undefined) return;
      pending.delete(conn);
      guard?.settled(address);
    };
    const settle = this.#settle;
    this.#onPendingClose = function onPendingClose(this: Duplex) {
      settle(this);
    };
    const sessionEnded = (client: Client): void => this.#sessionEnded(client);
    this.#onConnClose = function onConnClose(this: Duplex & { client?: Client }) {
      if (this.client) sessionEnded(this.client);
    };
  }

  static async create(opts: FleetBrokerOptions): Promise<FleetBroker> {
    const maxPayloadBytes = opts.maxPayloadBytes ?? MAX_MQTT_PAYLOAD_BYTES;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) throw new RangeError(`maxPayloadBytes must be a positive integer`);
    const logger = opts.logger.child({ component: 'broker' });
    const sessions = new SessionTable();
    const metrics = new BrokerMetrics(opts.registry ?? new Registry(), () => sessions.size);
    let aedesRef: AedesInternals | null = null;
    const addresses = new WeakMap<Client, string>();
    const hooks = createPolicyHooks({
      auth: opts.auth,
      events: opts.events,
      metrics,
      logger,
      sessions,
      maxPayloadBytes,
      registered: (deviceId) => (aedesRef ? aedesRef.clients[deviceId] : undefined),
      addressOf: (client) => addresses.get(client) ?? '',
      ...(opts.guards?.throttle ? { throttle: opts.guards.throttle } : {}),
      ...(opts.guards?.maxOutgoingBufferBytes !== undefined ? { maxOutgoingBufferBytes: opts.guards.maxOutgoingBufferBytes } : {}),
      // On the next tick: aedes is in the middle of a delivery to this client (close() destroys the socket).
      shed: (client) => setImmediate(() => client.close()),
    });
    const aedesOptions: AedesOptions = {
      preConnect: hooks.preConnect,
      authenticate: hooks.authenticate,
      authorizePublish: hooks.authorizePublish,
      authorizeSubscribe: hooks.authorizeSubscribe,
      authorizeForward: hooks.authorizeForward,
      published: hooks.published,
      // Packets a client may pipeline before its CONNACK (it is paused while authenticating).
      // Devices send nothing before CONNACK; a small bound caps what a connect flood can park.
      queueLimit: 8,
      // A socket that has not sent CONNECT holds a descriptor and buffers; shed it sooner.
      connectTimeout: 10_000,
      // Device ids go up to 64 characters (the 23-character cap only applies to MQTT 3.1).
      maxClientsIdLength: 64,
    };
    const aedes = await Aedes.createBroker(aedesOptions);
    const internals = aedes as unknown as AedesInternals;
    aedesRef = internals;
    guardIncomingStore(internals);
    if (!boundDrainDepth((aedes as unknown as { mq: unknown }).mq)) logger.warn('aedes message emitter has an unexpected shape; its queue drain depth is not bounded');
    const retained = indexRetained(internals.persistence as unknown as RetainedPersistence);

    const broker = new FleetBroker(aedes, sessions, { ...opts, logger }, maxPayloadBytes + PACKET_HEADER_ALLOWANCE, metrics, addresses);
    broker.#retained = retained;
    broker.#wire(hooks.reportViolation);
    return broker;
  }

  #wire(reportViolation: (deviceId: string | null, code: 'FLT_MSG_TOO_LARGE', detail: string) => void): void {
    const aedes = this.#aedes;
    // 'client' fires when aedes registers the session, just before it writes CONNACK 0, so the
    // device counts as connected by the time it hears it is.
    aedes.on('client', (client) => {
      this.#settle((client as unknown as { conn: Duplex }).conn);
      if (client.closed) return;
      releaseConnectPacket(client);
      const replaced = this.#sessions.ready(client);
      // aedes normally closes the older session itself; this covers a session it lost track of.
      if (replaced && !replaced.closed) {
        this.#sessions.supersede(replaced);
        replaced.close();
      }
      safely(this.#logger, 'deviceConnected', () => this.#events.deviceConnected(client.id));
    });
    aedes.on('clientDisconnect', (client) => this.#sessionEnded(client));
    const onError = (client: Client, err: Error): void => {
      if (err instanceof PacketTooLargeError) {
        reportViolation(client.id ?? null, 'FLT_MSG_TOO_LARGE', err.message);
      } else {
        this.#logger.debug({ deviceId: client.id, err: err.message }, 'mqtt connection error');
      }
    };
    aedes.on('clientError', onError);
    aedes.on('connectionError', onError);
  }

  #sessionEnded(client: Client): void {
    if (this.#sessions.gone(client)) {
      safely(this.#logger, 'deviceDisconnected', () => this.#events.deviceDisconnected(client.id));
    }
  }

  /** Hands one connection (TCP socket or WebSocket stream) to aedes under the packet-size guard. */
  #accept(conn: Duplex, req?: IncomingMessage): void {
    if (this.#closing) {
      conn.destroy();
      return;
    }
    const address = remoteAddressOf(conn, req);
    if (this.#connectGuard) {
      if (!this.#connectGuard.admit(address)) {
        // Closed before aedes parses a byte: a flood costs an accept and a close.
        this.#metrics.shedConnection('flood');
        // Debug only: a flood would otherwise flood the log too; the metric is what alerts.
        this.#logger.debug({ code: 'FLT_MQTT_CONNECT_FLOOD', address }, 'mqtt connection shed');
        conn.destroy();
        return;
      }
      this.#pending.set(conn, address);
      conn.once('close', this.#onPendingClose);
    }
    const client = this.#aedes.handle(conn, req);
    this.#addresses.set(client, address);
    this.#guardPacketSize(client);
    // Fallback for sessions whose unregister aedes skipped (see SessionTable).
    conn.once('close', this.#onConnClose);
  }

  async listen(opts: ListenOptions): Promise<BoundPorts> {
    if (this.#closing) throw new Error('FleetBroker is closed');
    if (this.#listening) throw new Error('FleetBroker is already listening');
    this.#listening = true;
    const tcp = await listenTcp(opts.host, opts.tcpPort, (socket) => this.#accept(socket));
    this.#listeners.push(tcp);
    let wsPort: number | null = null;
    if (opts.wsPort !== undefined && opts.wsPort !== null) {
      const ws = await listenWs(opts.host, opts.wsPort, this.#maxPacketBytes + 16, (stream, req) => this.#accept(stream, req));
      this.#listeners.push(ws);
      wsPort = ws.port;
    }
    this.#logger.info({ host: opts.host, tcpPort: tcp.port, wsPort }, 'mqtt broker listening');
    return { tcpPort: tcp.port, wsPort };
  }

  /** Server-side publish (desired state, acks, commands): not subject to the device policy. */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    if (topic.length === 0 || /[+#]/.test(topic)) return Promise.reject(new TypeError(`not a publishable topic: ${JSON.stringify(topic)}`));
    if (this.#closing) return Promise.reject(new Error('FleetBroker is closed'));
    return new Promise((resolve, reject) => {
      this.#aedes.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  /** Disconnects the device now, including a connection still authenticating. For revocation:
   *  make the authenticator refuse the device first, then kick. */
  kick(deviceId: string): boolean {
    const targets = new Set<Client>(this.#sessions.authenticating(deviceId));
    const live = this.#sessions.current(deviceId);
    if (live) targets.add(live);
    const registered = this.#internals.clients[deviceId];
    if (registered) targets.add(registered);
    let kicked = false;
    for (const client of targets) {
      if (client.closed) continue;
      client.close();
      kicked = true;
    }
    return kicked;
  }

  isConnected(deviceId: string): boolean {
    const client = this.#sessions.current(deviceId);
    return client !== undefined && !client.closed;
  }

  connectedCount(): number {
    return this.#sessions.size;
  }

  /** Retained messages held (at most one status per device, plus the server's own). */
  retainedCount(): number {
    return this.#retained.size();
  }

  /** Stops the listeners and disconnects every client; bounded, and safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const aedesClosed = new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
    const listenersClosed = this.#listeners.map((l) => l.close());
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), CLOSE_DEADLINE_MS);
      timer.unref();
    });
    const outcome = await Promise.race([Promise.allSettled([aedesClosed, ...listenersClosed]), deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.#logger.warn('mqtt broker close hit its deadline');
    this.#logger.info('mqtt broker closed');
  }
}

/** The peer's address: the TCP socket's, or for a WebSocket stream the upgrade request's. */
function remoteAddressOf(conn: Duplex, req?: IncomingMessage): string {
  return (conn as { remoteAddress?: string }).remoteAddress ?? req?.socket.remoteAddress ?? '';
}

/**
 * aedes clears a client's stored inbound QoS 2 packets when that client closes with a clean
 * session, keyed only by client id. A connection that claimed a device's id but failed to
 * authenticate would so wipe the real device's store. Clean only for the registered session,
 * or when no session holds the id.
 */
function guardIncomingStore(aedes: AedesInternals): void {
  const persistence = aedes.persistence;
  const clean = persistence.cleanIncoming?.bind(persistence);
  if (!clean) return;
  persistence.cleanIncoming = (client) => {
    const holder = aedes.clients[client.id];
    return holder === undefined || holder === client ? clean(client) : Promise.resolve();
  };
}
