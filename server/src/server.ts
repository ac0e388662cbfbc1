import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { deviceTopic, DRIFT_SUMMARY_EVENT, HARD_EXAMPLE_EVENT } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import { resolveConfig } from './config/load.ts';
import type { ServerConfig, ServerConfigInput } from './config/schema.ts';
import { openDatabase, type Db } from './db/open.ts';
import { ApiTokens } from './auth/api-tokens.ts';
import { throttleFromConfig } from './auth/throttle-config.ts';
import { EnrollmentTokens } from './auth/enrollment-tokens.ts';
import { AuditLog } from './audit/audit-log.ts';
import { DeviceStore } from './fleet/device-store.ts';
import { Enrollment } from './fleet/enrollment.ts';
import { FleetAdmin } from './fleet/fleet-admin.ts';
import { DeviceIngest } from './fleet/device-ingest.ts';
import type { DeviceLink } from './fleet/device-link.ts';
import { bindDeviceGauge, createServerMetrics, type ServerMetrics } from './metrics/server-metrics.ts';
import { buildHttpApp } from './http/app.ts';
import { createServerBroker, type ServerBroker } from './broker/external/server-broker.ts';
import { createRegistry, type RegistryServices } from './registry/index.ts';
import { RolloutEngine, RolloutScheduler, releaseCatalogFromRegistry, variantResolverFromRegistry } from './rollouts/index.ts';
import { PoolAdmin, PoolStore } from './pools/index.ts';
import { HardExampleStore } from './hard-examples/index.ts';
import { DriftTracker, driftGauges, driftReferenceOf } from './drift/index.ts';
import { RetentionSweeper } from './retention/retention-sweeper.ts';

export interface ServerDeps {
  now?: () => number;
  logger?: Logger;
}

export interface ListeningAddresses {
  http: string;
  mqtt: string;
  ws: string | null;
}

export interface BootstrapSecrets {
  /** Set only when this start created the token (first start without one configured). */
  adminToken: string | null;
  enrollmentToken: string | null;
}

/**
 * One control server: database, REST API, embedded broker, device ingest. `buildServer` opens the
 * database and wires everything without listening; `listen()` opens the ports; `close()` stops
 * in reverse order, is bounded by `shutdownTimeoutMs`, and can be called any number of times.
 */
export class FlotillaServer {
  readonly config: Readonly<ServerConfig>;
  readonly logger: Logger;
  readonly db: Db;
  readonly metrics: ServerMetrics;
  readonly http: FastifyInstance;
  readonly broker: ServerBroker;
  readonly fleet: FleetAdmin;
  readonly ingest: DeviceIngest;
  readonly apiTokens: ApiTokens;
  readonly enrollmentTokens: EnrollmentTokens;
  readonly bootstrap: BootstrapSecrets;
  readonly registry: RegistryServices;
  readonly rollouts: RolloutEngine;
  /** Removes device events, hard examples and audit entries past their retention (config `retention`). */
  readonly retention: RetentionSweeper;
  readonly #rolloutScheduler: RolloutScheduler;
  #addresses: ListeningAddresses | null = null;
  #closing: Promise<void> | null = null;
  #mqttUrls: { tcp: string; ws?: string };

  private constructor(parts: {
    config: Readonly<ServerConfig>;
    logger: Logger;
    db: Db;
    metrics: ServerMetrics;
    http: FastifyInstance;
    broker: ServerBroker;
    fleet: FleetAdmin;
    ingest: DeviceIngest;
    apiTokens: ApiTokens;
    enrollmentTokens: EnrollmentTokens;
    bootstrap: BootstrapSecrets;
    registry: RegistryServices;
    rollouts: RolloutEngine;
    retention: RetentionSweeper;
    mqttUrls: { tcp: string; ws?: string };
  }) {
    this.config = parts.config;
    this.logger = parts.logger;
    this.db = parts.db;
    this.metrics = parts.metrics;
    this.http = parts.http;
    this.broker = parts.broker;
    this.fleet = parts.fleet;
    this.ingest = parts.ingest;
    this.apiTokens = parts.apiTokens;
    this.enrollmentTokens = parts.enrollmentTokens;
    this.bootstrap = parts.bootstrap;
    this.registry = parts.registry;
    this.rollouts = parts.rollouts;
    this.retention = parts.retention;
    this.#rolloutScheduler = new RolloutScheduler(parts.rollouts, { onError: (err) => parts.logger.error({ err }, 'rollout tick failed') });
    this.#mqttUrls = parts.mqttUrls;
  }

  static async build(input: ServerConfigInput | Readonly<ServerConfig> = {}, deps: ServerDeps = {}): Promise<FlotillaServer> {
    const config = Object.isFrozen(input) ? (input as Readonly<ServerConfig>) : resolveConfig(input);
    const now = deps.now ?? Date.now;
    const logger = deps.logger ?? pino({ level: config.logLevel, base: { svc: 'flotilla-server' } });
    const dataDir = resolve(config.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const db = openDatabase(join(dataDir, 'flotilla.db'));
    try {
      const metrics = createServerMetrics();
      const devices = new DeviceStore(db);
      devices.resetPresence();
      bindDeviceGauge(metrics, devices);
      const apiTokens = new ApiTokens(db, now);
      const enrollmentTokens = new EnrollmentTokens(db, now);
      const audit = new AuditLog(db, now);
      const bootstrap = ensureBootstrapSecrets(config, dataDir, apiTokens, enrollmentTokens, logger);
      // One throttle for REST and MQTT: guesses at a device credential count together on both.
      const authThrottle = throttleFromConfig(config.guards, now);

      // The broker and the fleet need each other (auth and events one way, send/kick the other);
      // the link defers to the broker once it exists.
      let broker: ServerBroker | null = null;
      const link: DeviceLink = {
        send: async (deviceId, channel, payload, opts) => {
          await broker?.publish(deviceTopic(deviceId, channel), payload, { qos: 1, retain: opts.retain });
        },
        isConnected: (deviceId) => broker?.isConnected(deviceId) ?? false,
        kick: (deviceId) => broker?.kick(deviceId) ?? false,
      };
      const mqttUrls = { tcp: '', ws: undefined as string | undefined };
      const enrollment = new Enrollment({
        db,
        devices,
        tokens: enrollmentTokens,
        link,
        now,
        autoAccept: config.autoAccept,
        retryAfterSec: config.enrollRetryAfterSec,
        mqtt: mqttUrls,
        onResult: (result) => metrics.enrollments.inc({ result }),
      });
      const fleet = new FleetAdmin({ db, devices, audit, link, now });
      const registry = await createRegistry({ config, dataDir, db, audit, devices, now });
      const rollouts = new RolloutEngine({
        db,
        devices,
        publisher: fleet,
        audit,
        now,
        resolver: variantResolverFromRegistry(registry.resolver),
        releases: releaseCatalogFromRegistry(registry.models),
        registry: metrics.registry,
        logger: logger.child({ part: 'rollouts' }),
      });
      const pools = new PoolAdmin({ db, store: new PoolStore(db), devices, audit, publisher: fleet, logger: logger.child({ part: 'pools' }), now });
      const hardExamples = new HardExampleStore(db, { maxInputUploadBytes: config.hardExamples.maxInputUploadBytes, now });
      const drift = new DriftTracker({
        db,
        thresholds: config.drift,
        reference: (model, version) => driftReferenceOf(registry, model, version),
        gauges: driftGauges(metrics),
        logger: logger.child({ part: 'drift' }),
        now,
      });
      const retention = new RetentionSweeper({ db, config: config.retention, now, audit, registry: metrics.registry, logger: logger.child({ part: 'retention' }) });
      const eventSinks = new Map([
        [HARD_EXAMPLE_EVENT, (deviceId: string, eventId: string, data: unknown, at: number) => hardExamples.ingest(deviceId, eventId, data, at)],
        [DRIFT_SUMMARY_EVENT, (deviceId: string, eventId: string, data: unknown, at: number) => drift.ingest(deviceId, eventId, data, at)],
      ]);
      const ingest = new DeviceIngest({
        db,
        devices,
        link,
        admin: fleet,
        metrics,
        logger: logger.child({ part: 'ingest' }),
        now,
        eventSinks,
        onReported: (id, reported) => rollouts.onDeviceReported(id, reported),
      });
      const brokerSetup = await createServerBroker(config.broker, {
        auth: { authenticate: (id, secret) => enrollment.authenticate(id, secret) },
        isActive: (id) => devices.activeCredentialHash(id) !== null,
        events: {
          deviceConnected: (id) => {
            // Escalation routing first, so the desired state resent on connect carries it.
            pools.syncDevice(id).catch((err: unknown) => logger.warn({ err, deviceId: id }, 'escalation routing not synced'));
            ingest.connected(id);
          },
          deviceDisconnected: (id) => ingest.disconnected(id),
          deviceMessage: (id, channel, payload) => ingest.message(id, channel, payload),
        },
        logger: logger.child({ part: 'broker' }),
        registry: metrics.registry,
        guards: {
          throttle: authThrottle,
          connects: { perSecond: config.guards.mqttConnectsPerSec, pending: config.guards.mqttPendingConnects, exemptAddresses: config.guards.exemptAddresses },
          maxOutgoingBufferBytes: config.guards.mqttOutgoingBufferBytes,
          now,
        },
      });
      broker = brokerSetup.broker;
      let server: FlotillaServer | null = null;
      const http = await buildHttpApp({
        config,
        logger,
        db,
        devices,
        apiTokens,
        enrollmentTokens,
        audit,
        enrollment,
        fleet,
        metrics,
        registry,
        rollouts,
        pools,
        hardExamples,
        drift,
        authThrottle,
        isReady: () => server !== null && server.#addresses !== null && server.#closing === null,
      });
      http.addHook('onClose', async () => drift.close());
      await brokerSetup.attachHttp(http);
      server = new FlotillaServer({ config, logger, db, metrics, http, broker, fleet, ingest, apiTokens, enrollmentTokens, bootstrap, registry, rollouts, retention, mqttUrls });
      return server;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  get addresses(): ListeningAddresses {
    if (!this.#addresses) throw new Error('server is not listening');
    return this.#addresses;
  }

  async listen(): Promise<ListeningAddresses> {
    if (this.#addresses) return this.#addresses;
    const { http, mqtt } = this.config;
    const ports = await this.broker.listen({ host: mqtt.host, tcpPort: mqtt.tcpPort, wsPort: mqtt.wsPort });
    await this.http.listen({ host: http.host, port: http.port });
    const httpPort = (this.http.server.address() as { port: number }).port;
    const hostForUrl = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);
    this.#mqttUrls.tcp = mqtt.publicUrl ?? ports.deviceUrl ?? `mqtt://${hostForUrl(mqtt.host)}:${ports.tcpPort}`;
    if (ports.wsPort !== null) this.#mqttUrls.ws = `ws://${hostForUrl(mqtt.host)}:${ports.wsPort}/mqtt`;
    this.#addresses = {
      http: http.publicUrl ?? `http://${hostForUrl(http.host)}:${httpPort}`,
      mqtt: this.#mqttUrls.tcp,
      ws: this.#mqttUrls.ws ?? null,
    };
    this.#rolloutScheduler.start();
    this.retention.start();
    return this.#addresses;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const deadline = new Promise<'timeout'>((r) => setTimeout(r, this.config.shutdownTimeoutMs, 'timeout').unref());
    const steps = async () => {
      // Reverse order of start: stop taking requests and device traffic, commit what arrived, close the database.
      this.#rolloutScheduler.close();
      await this.retention.close();
      await this.rollouts.close();
      await Promise.allSettled([this.http.close(), this.broker.close()]);
      // Object storage holds pooled connections; nothing reads artifacts once HTTP is closed.
      await this.registry.artifacts.close?.();
      this.ingest.flush();
    };
    const result = await Promise.race([steps().then(() => 'done' as const), deadline]);
    if (result === 'timeout') this.logger.warn('shutdown timed out; remaining connections were dropped');
    this.ingest.flush();
    if (this.db.open) this.db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function buildServer(config: ServerConfigInput | Readonly<ServerConfig> = {}, deps: ServerDeps = {}): Promise<FlotillaServer> {
  return FlotillaServer.build(config, deps);
}

/**
 * First start: makes sure an admin token and a fleet enrollment token exist. Configured tokens are
 * registered as given; otherwise new ones are generated and written, readable only by the owner,
 * into the data folder (they are stored in the database only as hashes). A configured token that an
 * admin revoked stays revoked: the server starts, warns, and the token authenticates nothing.
 */
function ensureBootstrapSecrets(config: Readonly<ServerConfig>, dataDir: string, api: ApiTokens, enroll: EnrollmentTokens, logger: Logger): BootstrapSecrets {
  const out: BootstrapSecrets = { adminToken: null, enrollmentToken: null };
  if (config.adminToken) {
    if (!api.isKnown(config.adminToken)) api.create('bootstrap-admin', 'admin', 'config', config.adminToken);
    else if (!api.hasToken(config.adminToken)) logger.warn('the configured admin token (adminToken) was revoked and stays revoked; configure a new one');
  } else if (api.countActiveAdmins() === 0) {
    out.adminToken = api.create('bootstrap-admin', 'admin', 'first-start').token;
    writeSecretFile(join(dataDir, 'admin-token'), out.adminToken);
  }
  if (config.enrollmentToken) {
    if (!enroll.has(config.enrollmentToken)) enroll.create('bootstrap', { plain: config.enrollmentToken });
  } else if (enroll.count() === 0) {
    out.enrollmentToken = enroll.create('default').token;
    writeSecretFile(join(dataDir, 'enrollment-token'), out.enrollmentToken);
  }
  return out;
}

function writeSecretFile(path: string, secret: string): void {
  writeFileSync(path, secret + '\n', { mode: 0o600 });
}

/** Reads a secret the first start wrote into the data folder (quick start and demo). */
export function readSecretFile(dataDir: string, name: 'admin-token' | 'enrollment-token'): string | null {
  const p = join(resolve(dataDir), name);
  return existsSync(p) ? readFileSync(p, 'utf8').trim() : null;
}
