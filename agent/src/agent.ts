import { EventEmitter } from 'node:events';
import { Compile } from 'typebox/compile';
import {
  FlotillaError,
  decodeMessage,
  encodeMessage,
  type ChannelMessageMap,
  type DesiredState,
  type DownChannel,
  type EnrollRequest,
  type ErrorCode,
  type Inventory,
  type ReportedState,
  ReportedState as ReportedStateSchema,
} from '@flotilla/protocol';
import type { FrozenAgentConfig } from './config/schema.ts';
import { Heartbeat } from './heartbeat/heartbeat.ts';
import { systemStats, type SystemStats } from './heartbeat/system-stats.ts';
import { EnrollClient } from './identity/enroll-client.ts';
import { enrollUntilDone } from './identity/enrollment.ts';
import { IdentityStore } from './identity/identity-store.ts';
import { collectInventory, type InventorySource } from './inventory/collect.ts';
import { createLogger, type Logger } from './logger.ts';
import { AgentMetrics } from './metrics/agent-metrics.ts';
import { backoffDelay } from './mqtt/backoff.ts';
import { MqttSession } from './mqtt/session.ts';
import { tcpStreamFactory, type MqttStreamFactory } from './mqtt/tcp-transport.ts';
import { Outbox, type EnqueueResult, type EventData, type OutboxPriority } from './outbox/outbox.ts';
import { OutboxSender } from './outbox/sender.ts';
import { systemRandom, type Random } from './runtime/random.ts';
import { sleep, systemTimers, type TimerHandle, type Timers } from './runtime/timers.ts';
import { PendingApplier, type DesiredStateApplier } from './state/applier.ts';
import { StateReconciler } from './state/reconciler.ts';
import { StateStore } from './state/state-store.ts';
import { openAgentDatabase, type AgentDatabase } from './storage/database.ts';
import { AGENT_VERSION } from './version.ts';

const checkReported = Compile(ReportedStateSchema);

/** Seams for tests and for later parts of the agent. Everything has a production default. */
export interface AgentDeps {
  logger?: Logger;
  timers?: Timers;
  random?: Random;
  /** Applies desired states; the default reports every desired model as pending. */
  applier?: DesiredStateApplier;
  /** Inventory source; the default probes this machine (nvidia-smi, Jetson files, onnxruntime). */
  inventory?: InventorySource;
  stats?: SystemStats;
  /** Byte stream to the broker for a URL; the default is TCP/TLS with TCP_NODELAY. */
  mqttStream?: (url: string) => MqttStreamFactory;
  /** Bound on close(), in ms (default 5000). */
  closeTimeoutMs?: number;
}

export type EnrollmentState = 'unenrolled' | 'pending' | 'accepted' | 'refused';

export interface AgentStatus {
  deviceId: string;
  enrollment: EnrollmentState;
  /** Error code of the refusal when enrollment is 'refused'. */
  enrollmentCode?: string;
  connected: boolean;
  /** Generation of the last applied desired state; null before the first. */
  appliedGeneration: number | null;
  outbox: { entries: number; bytes: number };
}

export interface AgentEvents {
  connected: [];
  disconnected: [];
  enrollment: [state: EnrollmentState, code?: string];
  /** A reported state was produced (published now if connected, else on the next connect). */
  reported: [reported: ReportedState];
  /** An incoming message was refused (logged, counted, ignored). */
  rejected: [channel: DownChannel, code: ErrorCode | string];
}

/**
 * The Flotilla agent daemon: identity and enrollment, the MQTT session, inventory, heartbeats,
 * desired/reported state and the durable outbox. `create()` opens its files; `start()` begins
 * enrolling/connecting and returns at once; `close()` is bounded and safe to call twice.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly config: FrozenAgentConfig;
  readonly deviceId: string;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly outbox: Outbox;

  readonly #timers: Timers;
  readonly #random: Random;
  readonly #db: AgentDatabase;
  readonly #identity: IdentityStore;
  readonly #reconciler: StateReconciler;
  readonly #sender: OutboxSender;
  readonly #heartbeat: Heartbeat;
  readonly #inventorySource: InventorySource;
  readonly #stats: SystemStats;
  readonly #mqttStream: (url: string) => MqttStreamFactory;
  readonly #closeTimeoutMs: number;
  readonly #startedAt: number;
  readonly #tasks = new Set<Promise<unknown>>();

  #session: MqttSession | undefined;
  #enrollClient: EnrollClient | undefined;
  #enrollAbort = new AbortController();
  #enrollment: EnrollmentState;
  #enrollmentCode: string | undefined;
  #inventory: Inventory | undefined;
  #authFailures = 0;
  /** Models reported mid-apply for a generation not applied yet (OTA progress). */
  #progress: ReportedState | undefined;
  #started = false;
  #closing: Promise<void> | undefined;

  private constructor(config: FrozenAgentConfig, deps: AgentDeps, db: AgentDatabase, identity: IdentityStore, logger: Logger) {
    super();
    this.config = config;
    this.deviceId = config.deviceId;
    this.logger = logger;
    this.#db = db;
    this.#identity = identity;
    this.#timers = deps.timers ?? systemTimers;
    this.#random = deps.random ?? systemRandom;
    this.#stats = deps.stats ?? systemStats;
    this.#mqttStream = deps.mqttStream ?? tcpStreamFactory;
    this.#closeTimeoutMs = deps.closeTimeoutMs ?? 5_000;
    this.#startedAt = this.#timers.now();
    this.#enrollment = identity.enrolled ? 'accepted' : 'unenrolled';
    this.metrics = new AgentMetrics();

    this.outbox = new Outbox(db, {
      maxEntries: config.outbox.maxEntries,
      maxBytes: config.outbox.maxBytes,
      now: () => this.#timers.now(),
      onDrop: (count, bytes) => {
        this.metrics.outboxDropped.inc(count);
        this.metrics.outboxDroppedBytes.inc(bytes);
        this.logger.warn({ dropped: count, bytes }, 'outbox full: dropped entries (recorded as an outbox.dropped event)');
      },
    });
    this.metrics.outboxDepth = () => this.outbox.depth();
    this.#sender = new OutboxSender({
      outbox: this.outbox,
      window: config.outbox.inflightWindow,
      ackTimeoutMs: config.outbox.ackTimeoutMs,
      timers: this.#timers,
      logger: logger.child({ part: 'outbox' }),
    });

    const store = new StateStore(db, () => this.#timers.now());
    this.#reconciler = new StateReconciler({
      store,
      applier: deps.applier ?? new PendingApplier(),
      logger: logger.child({ part: 'state' }),
      report: (reported) => this.#onReported(reported),
      onDesired: (desired) => this.#heartbeat.setInterval(this.#heartbeatSecFor(desired)),
    });
    const applied = this.#reconciler.reported;
    if (applied) this.metrics.appliedGeneration.set(applied.appliedGeneration);

    this.#heartbeat = new Heartbeat({
      timers: this.#timers,
      intervalSec: this.#heartbeatSecFor(store.desired()),
      beat: () => this.#sendHeartbeat(),
    });

    this.#inventorySource = deps.inventory ?? {
      collect: () =>
        collectInventory({
          dataDir: config.dataDir,
          agentVersion: AGENT_VERSION,
          providers: config.inventory.providers,
          commandTimeoutMs: config.inventory.commandTimeoutMs,
        }),
    };
    this.#setEnrollmentMetric();
  }

  /** Opens (creating on first start) the identity file and the local database. No network yet. */
  static async create(config: FrozenAgentConfig, deps: AgentDeps = {}): Promise<Agent> {
    const logger = deps.logger ?? createLogger(config.logLevel);
    const now = (deps.timers ?? systemTimers).now;
    const opened = IdentityStore.open(config.dataDir, config.deviceId, now);
    if (opened.created) logger.info({ path: opened.store.path }, 'generated a new enrollment key');
    if (opened.replacedDeviceId) logger.warn({ previous: opened.replacedDeviceId }, 'device id changed: started a new identity');
    const db = openAgentDatabase(config.dataDir);
    return new Agent(config, deps, db, opened.store, logger);
  }

  /** Collects the inventory, then enrolls (if needed) and connects in the background. */
  async start(): Promise<void> {
    if (this.#started || this.#closing) return;
    this.#started = true;
    await this.#refreshInventory();
    // Apply a desired state that was stored but never applied (crash mid-apply), even offline.
    this.#reconciler.retryPending();
    if (this.#identity.enrolled) this.#startSession();
    else this.#track(this.#enrollThenConnect(0));
  }

  status(): AgentStatus {
    const status: AgentStatus = {
      deviceId: this.deviceId,
      enrollment: this.#enrollment,
      connected: this.#session?.connected === true,
      appliedGeneration: this.#reconciler.reported?.appliedGeneration ?? null,
      outbox: this.outbox.depth(),
    };
    if (this.#enrollmentCode) status.enrollmentCode = this.#enrollmentCode;
    return status;
  }

  /** The last reported state (undefined before the first desired state was applied). */
  get reported(): ReportedState | undefined {
    return this.#reconciler.reported;
  }

  /** Records an event durably (committed before returning); it is sent as soon as it can be. */
  enqueueEvent(kind: string, data: EventData, opts: { priority?: OutboxPriority } = {}): EnqueueResult {
    if (this.#closing) throw new FlotillaError('FLT_AGENT_CLOSED');
    return this.outbox.enqueue(kind, data, opts);
  }

  /** The inventory collected at start (or on a `report` command); undefined if collection failed. */
  get inventory(): Inventory | undefined {
    return this.#inventory;
  }

  /** Server base URL and the device's HTTP Basic authorization (undefined before enrollment), for downloads. */
  serverAccess(): { url: string; authorization: string | undefined } {
    const credential = this.#identity.current.credential;
    const authorization = credential ? `Basic ${Buffer.from(`${this.deviceId}:${credential}`).toString('base64')}` : undefined;
    return { url: this.config.serverUrl, authorization };
  }

  /**
   * The device id and its current HTTP credential (undefined before enrollment), read afresh on
   * each call so a re-enrollment's new credential is used at once: for the parts of the daemon
   * that call the server themselves (the hard-example input uploader).
   */
  deviceCredential(): { deviceId: string; credential: string } | undefined {
    const credential = this.#identity.current.credential;
    return credential ? { deviceId: this.deviceId, credential } : undefined;
  }

  /**
   * Publishes the models part of the reported state between applies: OTA progress while a desired
   * generation is being applied (`generation` = that one; published, not persisted, so a crash still
   * re-applies it), or later changes to the last applied one (persisted). Older generations are ignored.
   */
  reportModels(models: ReportedState['models'], generation?: number): void {
    if (this.#closing) return;
    const applied = this.#reconciler.reported?.appliedGeneration;
    const g = generation ?? applied;
    if (g === undefined || (applied !== undefined && g < applied)) return;
    const reported: ReportedState = { appliedGeneration: g, models };
    if (g === applied) {
      if (!this.#reconciler.replaceReported(reported)) return;
      this.#progress = undefined;
    } else {
      if (!checkReported.Check(reported)) return;
      this.#progress = reported;
    }
    const session = this.#session;
    if (session?.connected) this.#send(session, 'reported', reported, { qos: 1 });
    this.emit('reported', reported);
  }

  /** Resolves when no desired state is being applied (tests, orderly shutdown). */
  idle(): Promise<void> {
    return this.#reconciler.idle();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#enrollAbort.abort();
    this.#heartbeat.stop();
    this.#sender.close();
    const bounded = <T>(p: Promise<T>): Promise<unknown> => {
      let timer: TimerHandle | undefined;
      const deadline = new Promise((resolve) => {
        timer = systemTimers.setTimeout(() => resolve('timeout'), this.#closeTimeoutMs);
      });
      return Promise.race([p, deadline]).finally(() => timer && systemTimers.clearTimeout(timer));
    };
    // Reverse order of creation: network first, then what the network fed, then storage.
    await Promise.allSettled([
      bounded(this.#session?.close(Math.min(2_000, this.#closeTimeoutMs)) ?? Promise.resolve()),
      bounded(Promise.allSettled([...this.#tasks])),
    ]);
    this.#session = undefined;
    await Promise.allSettled([bounded(this.#reconciler.close()), bounded(this.#enrollClient?.close() ?? Promise.resolve())]);
    this.#db.close();
    this.removeAllListeners();
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.logger.error({ err: (err as Error).message }, 'background task failed'));
    this.#tasks.add(tracked);
    void tracked.finally(() => this.#tasks.delete(tracked));
  }

  #heartbeatSecFor(desired: DesiredState | undefined): number {
    return desired?.config?.heartbeatSec ?? this.config.heartbeatSec;
  }

  async #refreshInventory(): Promise<void> {
    try {
      this.#inventory = await this.#inventorySource.collect();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'inventory collection failed');
    }
  }

  #setEnrollment(state: EnrollmentState, code?: string): void {
    this.#enrollment = state;
    this.#enrollmentCode = code;
    this.#setEnrollmentMetric();
    this.emit('enrollment', state, code);
  }

  #setEnrollmentMetric(): void {
    for (const s of ['unenrolled', 'pending', 'accepted', 'refused'] as const) this.metrics.enrollmentState.set({ state: s }, s === this.#enrollment ? 1 : 0);
  }

  #enrollRequest(): EnrollRequest {
    const req: EnrollRequest = {
      enrollmentToken: this.config.enrollmentToken ?? '',
      deviceId: this.deviceId,
      enrollmentKey: this.#identity.current.enrollmentKey,
    };
    if (Object.keys(this.config.labels).length > 0) req.labels = { ...this.config.labels };
    if (this.#inventory) req.inventory = this.#inventory;
    return req;
  }

  /** Enrolls with the kept key (first start, refused credential, or a `reenroll` command), then connects. */
  async #enrollThenConnect(delayMs: number): Promise<void> {
    if (delayMs > 0) await sleep(this.#timers, delayMs, this.#enrollAbort.signal);
    if (this.#enrollAbort.signal.aborted) return;
    if (!this.config.enrollmentToken) {
      this.logger.error({ code: 'FLT_AGENT_CONFIG_INVALID' }, 'not enrolled and no enrollmentToken configured (FLOTILLA_ENROLLMENT_TOKEN)');
      this.#setEnrollment('refused', 'FLT_AGENT_CONFIG_INVALID');
      return;
    }
    this.#enrollClient ??= new EnrollClient(this.config.serverUrl);
    const outcome = await enrollUntilDone({
      client: this.#enrollClient,
      request: () => this.#enrollRequest(),
      timers: this.#timers,
      random: this.#random,
      backoff: this.config.mqtt.backoff,
      logger: this.logger.child({ part: 'enroll' }),
      signal: this.#enrollAbort.signal,
      onPending: () => {
        if (this.#enrollment !== 'pending') this.#setEnrollment('pending', 'FLT_AGENT_ENROLL_PENDING');
      },
    });
    if (outcome.status === 'aborted' || this.#closing) return;
    if (outcome.status === 'refused') {
      // Stop asking; the agent keeps running (and, later, serving its cached models).
      this.#setEnrollment('refused', outcome.code);
      return;
    }
    this.#identity.saveCredential(outcome.credential, outcome.mqtt, this.#timers.now());
    this.logger.info({ mqtt: this.config.mqttUrl ?? outcome.mqtt.tcp }, 'enrollment accepted');
    this.#setEnrollment('accepted');
    this.#startSession();
  }

  #startSession(): void {
    const identity = this.#identity.current;
    const url = this.config.mqttUrl ?? identity.mqtt?.tcp;
    if (!url || !identity.credential) return;
    this.#session?.stop();
    let stream: MqttStreamFactory;
    try {
      stream = this.#mqttStream(url);
    } catch (err) {
      this.logger.error({ url, err: (err as Error).message }, 'unusable MQTT URL');
      return;
    }
    const session = new MqttSession({
      deviceId: this.deviceId,
      credential: identity.credential,
      stream,
      keepaliveSec: this.config.mqtt.keepaliveSec,
      connectTimeoutMs: this.config.mqtt.connectTimeoutMs,
      backoff: this.config.mqtt.backoff,
      timers: this.#timers,
      random: this.#random,
      logger: this.logger.child({ part: 'mqtt' }),
    });
    this.#session = session;
    session.on('connected', () => this.#onConnected(session));
    session.on('disconnected', () => this.#onDisconnected());
    session.on('message', (channel, payload) => this.#onMessage(channel, payload));
    session.on('authRefused', () => this.#onAuthRefused(session));
    session.start();
  }

  /**
   * Encodes with the protocol package and publishes, fire and forget: everything sent this way is
   * published again on the next connect anyway. An encoding failure is a bug, logged, never thrown
   * into an MQTT event handler.
   */
  #send<C extends 'status' | 'inventory' | 'reported' | 'heartbeat'>(
    session: MqttSession,
    channel: C,
    body: ChannelMessageMap[C]['body'],
    opts: { qos: 0 | 1; retain?: boolean },
  ): void {
    let payload: Buffer;
    try {
      payload = encodeMessage(channel, body).payload;
    } catch (err) {
      this.logger.error({ channel, err: (err as Error).message }, 'refusing to publish an invalid message');
      return;
    }
    session.publish(channel, payload, opts).catch((err: unknown) => this.logger.debug({ channel, err: (err as Error).message }, 'publish interrupted'));
  }

  #onConnected(session: MqttSession): void {
    if (this.#session !== session) return;
    this.#authFailures = 0;
    this.metrics.mqttConnects.inc();
    this.metrics.mqttConnected.set(1);
    this.#send(session, 'status', { state: 'online' }, { qos: 1, retain: true });
    if (this.#inventory) this.#send(session, 'inventory', this.#inventory, { qos: 1 });
    const reported = this.#reconciler.reported;
    if (reported) this.#send(session, 'reported', reported, { qos: 1 });
    if (this.#progress && this.#progress.appliedGeneration > (reported?.appliedGeneration ?? 0)) this.#send(session, 'reported', this.#progress, { qos: 1 });
    this.#sender.online((payload) => session.publish('events', payload, { qos: 1 }));
    this.#heartbeat.start();
    this.#reconciler.retryPending();
    this.emit('connected');
  }

  #onDisconnected(): void {
    this.metrics.mqttConnected.set(0);
    this.#sender.offline();
    this.#heartbeat.stop();
    this.emit('disconnected');
  }

  #onAuthRefused(session: MqttSession): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    this.metrics.mqttConnected.set(0);
    // The credential may have been rotated or revoked: ask again with the same enrollment key.
    // Backing off keeps a device from hammering the server if the answer keeps failing.
    const delay = backoffDelay(this.#authFailures++, this.config.mqtt.backoff, this.#random);
    this.logger.warn({ code: 'FLT_MQTT_AUTH_FAILED', delayMs: delay }, 'credential refused by the broker, re-enrolling');
    this.#setEnrollment('unenrolled', 'FLT_MQTT_AUTH_FAILED');
    this.#track(this.#enrollThenConnect(delay));
  }

  #onReported(reported: ReportedState): void {
    if (this.#progress && this.#progress.appliedGeneration <= reported.appliedGeneration) this.#progress = undefined;
    this.metrics.appliedGeneration.set(reported.appliedGeneration);
    const session = this.#session;
    if (session?.connected) {
      this.#send(session, 'reported', reported, { qos: 1 });
    }
    this.emit('reported', reported);
  }

  #reject(channel: DownChannel, code: string, reason: string): void {
    this.metrics.messagesRejected.inc({ channel, code });
    this.logger.warn({ channel, code, reason }, 'incoming message refused');
    this.emit('rejected', channel, code);
  }

  #onMessage(channel: DownChannel, payload: Buffer): void {
    switch (channel) {
      case 'desired': {
        const decoded = decodeMessage('desired', payload);
        if (!decoded.ok) return this.#reject(channel, decoded.code, decoded.reason);
        this.#reconciler.submit(decoded.message.body);
        return;
      }
      case 'ack': {
        const decoded = decodeMessage('ack', payload);
        if (!decoded.ok) return this.#reject(channel, decoded.code, decoded.reason);
        this.#sender.handleAck(decoded.message.body.ids);
        return;
      }
      case 'cmd': {
        const decoded = decodeMessage('cmd', payload);
        if (!decoded.ok) return this.#reject(channel, decoded.code, decoded.reason);
        if (decoded.message.body.command === 'report') this.#track(this.#reportAgain());
        else this.#track(this.#reenroll());
        return;
      }
    }
  }

  /** `report` command: collect the inventory afresh and publish it with the reported state. */
  async #reportAgain(): Promise<void> {
    await this.#refreshInventory();
    const session = this.#session;
    if (!session?.connected) return;
    if (this.#inventory) this.#send(session, 'inventory', this.#inventory, { qos: 1 });
    const reported = this.#reconciler.reported;
    if (reported) this.#send(session, 'reported', reported, { qos: 1 });
  }

  /** `reenroll` command: the server rotated the credential; collect the new one and reconnect. */
  async #reenroll(): Promise<void> {
    const old = this.#session;
    this.#session = undefined;
    await old?.close();
    this.#onDisconnectedQuietly();
    await this.#enrollThenConnect(0);
  }

  #onDisconnectedQuietly(): void {
    this.metrics.mqttConnected.set(0);
    this.#sender.offline();
    this.#heartbeat.stop();
  }

  #sendHeartbeat(): void {
    const session = this.#session;
    if (!session?.connected) return;
    const body: { uptimeSec: number; loadAvg1: number; memFreeBytes: number; outboxDepth: number; diskFreeBytes?: number } = {
      uptimeSec: Math.max(0, (this.#timers.now() - this.#startedAt) / 1000),
      loadAvg1: Math.max(0, this.#stats.loadAvg1()),
      memFreeBytes: Math.max(0, Math.round(this.#stats.memFreeBytes())),
      outboxDepth: this.outbox.depth().entries,
    };
    const disk = this.#stats.diskFreeBytes(this.config.dataDir);
    if (disk !== undefined) body.diskFreeBytes = Math.max(0, Math.round(disk));
    this.metrics.heartbeats.inc();
    this.#send(session, 'heartbeat', body, { qos: 0 });
  }
}
