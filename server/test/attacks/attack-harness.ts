/**
 * A FleetBroker with its abuse guards on, and clients that connect from a chosen loopback source
 * address (Linux routes all of 127.0.0.0/8 to lo), so one test can play an attacker on one
 * address and a legitimate device on another. Everything made here closes when the test ends.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { MqttClient } from 'mqtt';
import type { IClientOptions } from 'mqtt';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { onTestFinished } from 'vitest';
import { FailureThrottle } from '../../src/auth/failure-throttle.ts';
import { FleetBroker } from '../../src/broker/index.ts';
import type { BrokerGuards } from '../../src/broker/fleet-broker.ts';
import { EventRecorder, memoryAuthenticator } from '../broker/harness.ts';

export interface GuardedBroker {
  broker: FleetBroker;
  port: number;
  events: EventRecorder;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** a CONNECT from `from`; resolves with the CONNACK code (0 accepted) or 'closed' when dropped unanswered */
  attempt(from: string, options: IClientOptions): Promise<{ code: number | 'closed'; client: MqttClient }>;
  /** a device with its own credential, connected from `from` */
  device(from: string, deviceId: string, extra?: IClientOptions): Promise<MqttClient>;
  /** a bare TCP connection from `from` that sends nothing */
  socket(from: string): Promise<Socket>;
}

export function testThrottle(now: () => number, overrides: Partial<ConstructorParameters<typeof FailureThrottle>[0]> = {}): FailureThrottle {
  return new FailureThrottle({ windowMs: 60_000, perAddress: 5, perIdentity: 1_000, blockMs: 30_000, maxBlockMs: 900_000, maxEntries: 1_000, now, ...overrides });
}

export async function startGuardedBroker(devices: Record<string, string>, guards: BrokerGuards): Promise<GuardedBroker> {
  const registry = new Registry();
  const events = new EventRecorder();
  const broker = await FleetBroker.create({
    auth: memoryAuthenticator(new Map(Object.entries(devices))),
    events,
    logger: pino({ level: 'silent' }),
    registry,
    guards,
  });
  onTestFinished(() => broker.close());
  const { tcpPort: port } = await broker.listen({ host: '127.0.0.1', tcpPort: 0, wsPort: null });

  const attempt = (from: string, options: IClientOptions) =>
    new Promise<{ code: number | 'closed'; client: MqttClient }>((resolve, reject) => {
      const client = new MqttClient(() => netConnect({ host: '127.0.0.1', port, localAddress: from, noDelay: true }), {
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        ...options,
      });
      onTestFinished(() => new Promise<void>((r) => client.end(true, {}, () => r())));
      client.on('error', () => {});
      client.once('connect', () => resolve({ code: 0, client }));
      client.once('error', (err) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') resolve({ code, client });
        else if (!client.connected) resolve({ code: 'closed', client });
        else reject(err);
      });
      client.once('close', () => resolve({ code: 'closed', client }));
    });

  return {
    broker,
    port,
    events,
    async metric(name, labels = {}) {
      const metric = await registry.getSingleMetric(name)?.get();
      const value = metric?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
      return value?.value ?? 0;
    },
    attempt,
    async device(from, deviceId, extra = {}) {
      const { code, client } = await attempt(from, { clientId: deviceId, username: deviceId, password: devices[deviceId] ?? '', ...extra });
      if (code !== 0) throw new Error(`device ${deviceId} refused: ${code}`);
      return client;
    },
    socket: (from) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = netConnect({ host: '127.0.0.1', port, localAddress: from }, () => resolve(socket));
        socket.on('error', () => {});
        socket.once('error', reject);
        onTestFinished(() => {
          socket.destroy();
        });
      }),
  };
}

/** Resolves once the socket is closed by the other end (or already was). */
export function closed(socket: Socket): Promise<void> {
  return socket.closed || socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}
