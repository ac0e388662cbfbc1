/**
 * The server in external broker mode: devices connect to another broker, the server joins it as a
 * privileged client. The broker enforces the device policy through its own ACLs (dynamic security)
 * or by asking the server (HTTP hooks); this class re-checks every message it receives with the
 * same policy functions as the embedded broker, tracks presence from the devices' retained status,
 * and turns kicks into broker account changes.
 */
import { FlotillaError, MAX_MQTT_PAYLOAD_BYTES, UP_CHANNELS, decodeMessage, fleetFilter, parseDeviceTopic } from '@flotilla/protocol';
import type { ErrorCode, UpChannel } from '@flotilla/protocol';
import type { Logger } from 'pino';
import { checkPublish } from '../device-policy.ts';
import { safely } from '../hooks.ts';
import type { BoundPorts } from '../fleet-broker.ts';
import type { BrokerEvents } from '../types.ts';
import { DYNSEC_RESPONSE_TOPIC, DynsecApi, type DynsecBatching } from './dynsec-api.ts';
import { DynsecProvisioner } from './dynsec-provisioner.ts';
import { PrivilegedClient } from './privileged-client.ts';
import { unrefIntervals, type IntervalTimers } from '../../clock/interval-timers.ts';

export interface ExternalBrokerOptions {
  url: string;
  username: string;
  password: string;
  provisioner: 'mosquitto-dynsec' | 'http-hooks';
  requestTimeoutMs: number;
  events: BrokerEvents;
  logger: Logger;
  /** true when the device is accepted and holds a current credential */
  isActive(deviceId: string): boolean;
  maxPayloadBytes?: number;
  /** How often dynsec is swept back in line with the database, besides every (re)connect; 0 turns the timer off. */
  reconcileIntervalMs?: number;
  /** Batching of dynsec commands (defaults in dynsec-api.ts). */
  batching?: Partial<DynsecBatching>;
  /** Timer seam for the periodic sweep (tests pass fake ones). */
  timers?: IntervalTimers;
}

const DEFAULT_RECONCILE_INTERVAL_MS = 5 * 60_000;

export class ExternalBroker {
  readonly #opts: ExternalBrokerOptions;
  readonly #logger: Logger;
  readonly #maxPayloadBytes: number;
  readonly #online = new Set<string>();
  #client: PrivilegedClient | null = null;
  #dynsec: DynsecApi | null = null;
  #provisioner: DynsecProvisioner | null = null;
  #closing: Promise<void> | null = null;
  #reconcileTimer: unknown = null;
  /** one sweep at a time: a periodic tick during a long sweep is skipped */
  #sweeping: Promise<void> | null = null;
  #sweepAgain = false;

  constructor(opts: ExternalBrokerOptions) {
    this.#opts = opts;
    this.#logger = opts.logger.child({ component: 'external-broker' });
    this.#maxPayloadBytes = opts.maxPayloadBytes ?? MAX_MQTT_PAYLOAD_BYTES;
  }

  /** The dynsec provisioner (mosquitto-dynsec mode only), for enrollment to grant credentials through. */
  get provisioner(): DynsecProvisioner | null {
    return this.#provisioner;
  }

  /**
   * Connects to the broker. With dynamic security it waits for the first connection (the server
   * account must be prepared before devices enroll); with HTTP hooks it returns at once, because
   * the broker authenticates the server itself through the HTTP API that starts after this.
   */
  async listen(): Promise<BoundPorts & { deviceUrl: string }> {
    if (this.#closing) throw new Error('ExternalBroker is closed');
    if (this.#client) throw new Error('ExternalBroker is already connected');
    const dynsecMode = this.#opts.provisioner === 'mosquitto-dynsec';
    const filters = UP_CHANNELS.map((c) => fleetFilter(c));
    if (dynsecMode) filters.push(DYNSEC_RESPONSE_TOPIC);
    const client = PrivilegedClient.start({
      url: this.#opts.url,
      username: this.#opts.username,
      password: this.#opts.password,
      filters,
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      logger: this.#logger,
      onMessage: (topic, payload, retain) => this.#onMessage(topic, payload, retain),
      onReady: () => this.#onReady(),
    });
    this.#client = client;
    if (dynsecMode) {
      this.#dynsec = new DynsecApi({ publish: (topic, payload) => client.publish(topic, payload, { qos: 1, retain: false }) }, {
        timeoutMs: this.#opts.requestTimeoutMs,
        ...(this.#opts.batching ? { batching: this.#opts.batching } : {}),
      });
      this.#provisioner = new DynsecProvisioner({ api: this.#dynsec, logger: this.#logger, isActive: this.#opts.isActive });
      await client.ready();
      await this.#provisioner.prepareServerAccount(this.#opts.username, () => client.nextReady());
      const every = this.#opts.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
      const timers = this.#opts.timers ?? unrefIntervals;
      if (every > 0 && !this.#closing) this.#reconcileTimer = timers.setInterval(() => void this.reconcileNow(), every);
    }
    return { tcpPort: 0, wsPort: null, deviceUrl: this.#opts.url };
  }

  /** Server-side publish (desired state, acks, commands) through the privileged connection. */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    if (topic.length === 0 || /[+#]/.test(topic)) return Promise.reject(new TypeError(`not a publishable topic: ${JSON.stringify(topic)}`));
    if (this.#closing || !this.#client) return Promise.reject(new FlotillaError('FLT_BROKER_UNAVAILABLE', 'not connected to the external broker'));
    return this.#client.publish(topic, payload, opts);
  }

  /**
   * Cuts the device off in the broker: with dynamic security its account follows the database
   * (removed when the device is no longer active) and its sessions are dropped. With HTTP hooks
   * the server cannot disconnect anyone; the hooks refuse the device's next packet instead.
   */
  kick(deviceId: string): boolean {
    const wasOnline = this.#online.has(deviceId);
    const provisioner = this.#provisioner;
    if (!provisioner) return false;
    // A device that lost its credential is offline for the server at once; its messages are dropped from now on.
    if (!this.#opts.isActive(deviceId)) this.#markOffline(deviceId);
    provisioner
      .reconcile(deviceId)
      .catch((err: unknown) => this.#logger.error({ err, deviceId }, 'broker did not drop the device; the next sweep retries'));
    return wasOnline;
  }

  isConnected(deviceId: string): boolean {
    return this.#online.has(deviceId);
  }

  connectedCount(): number {
    return this.#online.size;
  }

  /**
   * Sweeps dynsec back in line with the database now (also run at every reconnect and on the
   * periodic timer). Never throws: a failed sweep is logged and the next one retries.
   */
  reconcileNow(): Promise<void> {
    const provisioner = this.#provisioner;
    if (!provisioner || this.#closing) return Promise.resolve();
    if (this.#sweeping) {
      // Asked again mid-sweep (a reconnect): what the running sweep read may already be stale.
      this.#sweepAgain = true;
      return this.#sweeping;
    }
    this.#sweeping = (async () => {
      do {
        this.#sweepAgain = false;
        try {
          const r = await provisioner.sweep();
          if (r.removed > 0 || r.failed > 0) this.#logger.warn(r, 'removed broker accounts of devices no longer active');
        } catch (err) {
          this.#logger.error({ err }, 'broker account sweep failed; the next one retries');
        }
      } while (this.#sweepAgain && !this.#closing);
      this.#sweeping = null;
    })();
    return this.#sweeping;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#reconcileTimer !== null) (this.#opts.timers ?? unrefIntervals).clearInterval(this.#reconcileTimer);
      this.#reconcileTimer = null;
      this.#dynsec?.close();
      await this.#client?.close();
      this.#logger.info('external broker connection closed');
    })();
    return this.#closing;
  }

  #onReady(): void {
    // After an outage the broker may still hold accounts of devices revoked meanwhile.
    void this.reconcileNow();
  }

  #onMessage(topic: string, payload: Buffer, retain: boolean): void {
    if (topic === DYNSEC_RESPONSE_TOPIC) {
      this.#dynsec?.handleResponse(payload);
      return;
    }
    const parsed = parseDeviceTopic(topic);
    if (parsed === null || parsed.direction !== 'up') return;
    // An empty retained payload is the broker replaying a cleared topic (or the server clearing one).
    if (payload.length === 0 && retain) return;
    const deviceId = parsed.deviceId;
    const decision = checkPublish(deviceId, topic, retain, payload.length, this.#maxPayloadBytes);
    if (!decision.ok) {
      this.#violation(deviceId, decision.code, decision.detail);
      // The broker's ACLs cannot forbid the retain flag per topic: undo it and cut the device off.
      if (retain) this.#publishQuietly(topic, Buffer.alloc(0), true);
      this.kick(deviceId);
      return;
    }
    // Revocation must hold at once even where the broker lags (HTTP hooks, a kick still in flight).
    if (!this.#opts.isActive(deviceId)) return;
    const channel: UpChannel = decision.channel;
    const wentOffline = channel === 'status' && this.#presence(deviceId, payload) === 'offline';
    safely(this.#logger, 'deviceMessage', () => this.#opts.events.deviceMessage(deviceId, channel, payload, { retain, qos: 1 }));
    if (wentOffline) safely(this.#logger, 'deviceDisconnected', () => this.#opts.events.deviceDisconnected(deviceId));
  }

  /** The agent announces itself with a retained `online` status and leaves an `offline` will. */
  #presence(deviceId: string, payload: Buffer): 'online' | 'offline' | null {
    const decoded = decodeMessage('status', payload);
    if (!decoded.ok || decoded.message.type !== 'status') return null;
    if (decoded.message.body.state !== 'online') return this.#online.delete(deviceId) ? 'offline' : null;
    if (this.#online.has(deviceId)) return null;
    this.#online.add(deviceId);
    safely(this.#logger, 'deviceConnected', () => this.#opts.events.deviceConnected(deviceId));
    return 'online';
  }

  #markOffline(deviceId: string): void {
    if (this.#online.delete(deviceId)) safely(this.#logger, 'deviceDisconnected', () => this.#opts.events.deviceDisconnected(deviceId));
  }

  #violation(deviceId: string, code: ErrorCode, detail: string): void {
    this.#logger.warn({ deviceId, code, detail }, 'mqtt policy violation');
    const events = this.#opts.events;
    if (events.policyViolation) safely(this.#logger, 'policyViolation', () => events.policyViolation?.(deviceId, code, detail));
  }

  #publishQuietly(topic: string, payload: Buffer, retain: boolean): void {
    this.#client?.publish(topic, payload, { qos: 1, retain }).catch((err: unknown) => this.#logger.warn({ err, topic }, 'could not clear a retained message'));
  }
}
