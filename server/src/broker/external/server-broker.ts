/**
 * What the rest of the server needs from "the broker", whichever mode runs: the embedded
 * FleetBroker, or an ExternalBroker joined as a privileged client. The choice is made here, once,
 * from the `broker` section of the configuration.
 */
import { FlotillaError, MAX_MQTT_PAYLOAD_BYTES } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ServerConfig } from '../../config/schema.ts';
import { FleetBroker } from '../fleet-broker.ts';
import type { BoundPorts, BrokerGuards, ListenOptions } from '../fleet-broker.ts';
import type { BrokerEvents, DeviceAuthenticator } from '../types.ts';
import { provisionOnEnroll } from './enroll-provisioning.ts';
import { ExternalBroker } from './external-broker.ts';
import { HookPolicy } from './hook-decisions.ts';
import { registerHttpHooks } from './http-hooks.ts';

export interface ServerBroker {
  /** Embedded: opens the listeners. External: connects to the broker; deviceUrl is where devices go. */
  listen(opts: ListenOptions): Promise<BoundPorts & { deviceUrl?: string }>;
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Disconnects the device now (external: through the broker, asynchronously). */
  kick(deviceId: string): boolean;
  isConnected(deviceId: string): boolean;
  connectedCount(): number;
  close(): Promise<void>;
}

export interface ServerBrokerDeps {
  auth: DeviceAuthenticator;
  events: BrokerEvents;
  logger: Logger;
  registry?: Registry;
  /** true when the device is accepted and holds a current credential */
  isActive(deviceId: string): boolean;
  /** embedded broker only: connect throttling, flood and slow-consumer limits */
  guards?: BrokerGuards;
}

export interface ServerBrokerSetup {
  broker: ServerBroker;
  /** Adds what the mode needs on the HTTP API (hooks, enrollment provisioning); before the app is ready. */
  attachHttp(app: FastifyInstance): Promise<void>;
}

export async function createServerBroker(config: Readonly<ServerConfig['broker']>, deps: ServerBrokerDeps): Promise<ServerBrokerSetup> {
  if (config.mode === 'embedded') {
    const broker = await FleetBroker.create({
      auth: deps.auth,
      events: deps.events,
      logger: deps.logger,
      ...(deps.registry ? { registry: deps.registry } : {}),
      ...(deps.guards ? { guards: deps.guards } : {}),
    });
    return { broker, attachHttp: async () => {} };
  }
  if (config.provisioner === 'http-hooks' && config.hookToken === undefined) {
    throw new FlotillaError('FLT_CONFIG_INVALID', 'broker.hookToken is required when broker.provisioner is http-hooks');
  }
  const external = new ExternalBroker({
    url: config.url,
    username: config.username,
    password: config.password,
    provisioner: config.provisioner,
    requestTimeoutMs: config.requestTimeoutMs,
    reconcileIntervalMs: config.reconcileIntervalSec * 1000,
    events: deps.events,
    logger: deps.logger,
    isActive: deps.isActive,
  });
  const attachHttp = async (app: FastifyInstance): Promise<void> => {
    if (config.provisioner === 'mosquitto-dynsec') {
      provisionOnEnroll(app, (deviceId, credential) => {
        const provisioner = external.provisioner;
        if (!provisioner) return Promise.reject(new FlotillaError('FLT_BROKER_UNAVAILABLE', 'not connected to the external broker yet'));
        return provisioner.grant(deviceId, credential);
      });
      return;
    }
    const policy = new HookPolicy({
      auth: deps.auth,
      isActive: deps.isActive,
      server: { username: config.username, password: config.password },
      maxPayloadBytes: MAX_MQTT_PAYLOAD_BYTES,
      onViolation: (deviceId, code, detail) => deps.events.policyViolation?.(deviceId, code, detail),
    });
    await registerHttpHooks(app, { policy, hookToken: config.hookToken! });
  };
  return { broker: external, attachHttp };
}
