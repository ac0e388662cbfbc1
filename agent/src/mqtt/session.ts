import { EventEmitter } from 'node:events';
import { MqttClient, type IClientOptions } from 'mqtt';
import type { Logger } from 'pino';
import { DOWN_CHANNELS, deviceTopic, encodeMessage, parseDeviceTopic, type DownChannel, type UpChannel } from '@flotilla/protocol';
import type { Random } from '../runtime/random.ts';
import type { TimerHandle, Timers } from '../runtime/timers.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import type { MqttStreamFactory } from './tcp-transport.ts';

/** CONNACK return codes (MQTT 3.1.1) that mean the credential itself was refused. */
const AUTH_REFUSED_CODES = new Set([4, 5]);

export interface MqttSessionOptions {
  deviceId: string;
  credential: string;
  stream: MqttStreamFactory;
  keepaliveSec: number;
  connectTimeoutMs: number;
  backoff: BackoffPolicy;
  timers: Timers;
  random: Random;
  logger: Logger;
}

export interface MqttSessionEvents {
  /** A CONNACK accepted the session; the owner publishes its hello (status, inventory, reported). */
  connected: [];
  disconnected: [reason: string];
  /** A message on one of the device's own down channels, payload not yet decoded. */
  message: [channel: DownChannel, payload: Buffer];
  /** The broker refused the credential: the session stops reconnecting, the owner re-enrolls. */
  authRefused: [returnCode: number];
  /** Delay chosen before the next connection attempt (for logs and tests). */
  reconnectScheduled: [attempt: number, delayMs: number];
}

export interface PublishOptions {
  qos: 0 | 1;
  retain?: boolean;
}

/**
 * One device's MQTT session: persistent (clean: false), client id = username = device id, last
 * will = retained `offline` status. mqtt.js's own reconnect is off: each attempt gets a fresh
 * client after a jittered exponential backoff on the injected timers, so the policy is ours and
 * testable. Only topics under the device's own prefix are touched.
 */
export class MqttSession extends EventEmitter<MqttSessionEvents> {
  readonly #opts: MqttSessionOptions;
  #client: MqttClient | undefined;
  #attempt = 0;
  #timer: TimerHandle | undefined;
  #stopped = true;
  #closing: Promise<void> | undefined;

  constructor(opts: MqttSessionOptions) {
    super();
    this.#opts = opts;
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Starts connecting (returns at once; listen for `connected`). */
  start(): void {
    if (this.#closing || !this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  topic(channel: UpChannel | DownChannel): string {
    return deviceTopic(this.#opts.deviceId, channel);
  }

  /** Publishes on one of the device's up channels. Rejects when not connected or the connection drops first. */
  publish(channel: UpChannel, payload: Buffer, opts: PublishOptions): Promise<void> {
    const client = this.#client;
    if (!client?.connected) return Promise.reject(new Error('MQTT session is not connected'));
    return new Promise((resolve, reject) => {
      client.publish(this.topic(channel), payload, { qos: opts.qos, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Stops reconnecting and drops the connection at once (the broker publishes the will). */
  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
    this.#dropClient();
  }

  /**
   * Graceful end: publishes the retained offline status itself (a clean DISCONNECT suppresses the
   * will), then disconnects. Bounded by `timeoutMs`; safe to call twice.
   */
  close(timeoutMs = 2_000): Promise<void> {
    this.#closing ??= this.#close(timeoutMs);
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    const graceful = (async () => {
      if (client.connected) {
        const offline = encodeMessage('status', { state: 'offline' }).payload;
        await client.publishAsync(this.topic('status'), offline, { qos: 1, retain: true }).catch(() => undefined);
      }
      await client.endAsync(false).catch(() => undefined);
    })();
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = this.#opts.timers.setTimeout(resolve, timeoutMs);
    });
    await Promise.race([graceful, deadline]);
    if (timer) this.#opts.timers.clearTimeout(timer);
    client.removeAllListeners();
    client.on('error', () => undefined);
    client.end(true);
  }

  #connect(): void {
    if (this.#stopped) return;
    const { deviceId, credential, logger } = this.#opts;
    const will = encodeMessage('status', { state: 'offline' }).payload;
    const options: IClientOptions = {
      clientId: deviceId,
      username: deviceId,
      password: credential,
      clean: false,
      protocolVersion: 4,
      keepalive: this.#opts.keepaliveSec,
      connectTimeout: this.#opts.connectTimeoutMs,
      reconnectPeriod: 0,
      manualConnect: true,
      resubscribe: false,
      will: { topic: this.topic('status'), payload: will, qos: 1, retain: true },
    };
    const client = new MqttClient(() => this.#opts.stream(), options);
    this.#client = client;
    let wasConnected = false;

    client.on('connect', () => {
      wasConnected = true;
      this.#attempt = 0;
      client.subscribe(
        DOWN_CHANNELS.map((c) => this.topic(c)),
        { qos: 1 },
        (err, granted) => {
          if (err) logger.warn({ err: err.message }, 'subscribe failed');
          const refused = granted?.filter((g) => g.qos === 128).map((g) => g.topic) ?? [];
          if (refused.length > 0) logger.error({ topics: refused }, 'broker refused subscriptions');
        },
      );
      logger.info({ deviceId }, 'mqtt connected');
      this.emit('connected');
    });
    client.on('message', (topic, payload) => {
      const parsed = parseDeviceTopic(topic);
      if (!parsed || parsed.deviceId !== deviceId || parsed.direction !== 'down') {
        logger.warn({ topic }, 'message on a topic outside this device, ignored');
        return;
      }
      this.emit('message', parsed.channel as DownChannel, payload);
    });
    client.on('error', (err) => {
      const code = (err as Error & { code?: unknown }).code;
      if (typeof code === 'number' && AUTH_REFUSED_CODES.has(code)) {
        logger.warn({ code: 'FLT_MQTT_AUTH_FAILED', returnCode: code }, 'broker refused the credential');
        this.#stopped = true;
        this.#clearTimer();
        this.#dropClient();
        this.emit('authRefused', code);
        return;
      }
      logger.debug({ err: err.message }, 'mqtt error');
    });
    client.on('close', () => {
      if (this.#client !== client) return;
      this.#dropClient();
      if (wasConnected) {
        logger.warn('mqtt connection lost');
        this.emit('disconnected', 'connection closed');
      }
      this.#scheduleReconnect();
    });
    client.connect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#timer) return;
    const delay = backoffDelay(this.#attempt, this.#opts.backoff, this.#opts.random);
    this.emit('reconnectScheduled', this.#attempt, delay);
    this.#attempt++;
    this.#timer = this.#opts.timers.setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
  }

  #dropClient(): void {
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    client.removeAllListeners();
    // A late socket error after we let go must not become an unhandled 'error' event.
    client.on('error', () => undefined);
    client.end(true);
  }

  #clearTimer(): void {
    if (this.#timer) this.#opts.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
