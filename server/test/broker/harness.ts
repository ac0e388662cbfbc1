/**
 * Test harness for the broker: a FleetBroker on port 0 with an in-memory authenticator, an event
 * recorder, and mqtt.js "devices". Everything it makes is closed when the calling test finishes.
 */
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { onTestFinished } from 'vitest';
import type { ErrorCode, UpChannel } from '@flotilla/protocol';
import { FleetBroker } from '../../src/broker/index.ts';
import type { BrokerEvents, DeviceAuthenticator } from '../../src/broker/index.ts';

export interface RecordedMessage {
  deviceId: string;
  channel: UpChannel;
  payload: string;
  retain: boolean;
  qos: 0 | 1 | 2;
}

export class EventRecorder implements BrokerEvents {
  readonly log: string[] = [];
  readonly messages: RecordedMessage[] = [];
  readonly violations: { deviceId: string | null; code: ErrorCode; detail: string }[] = [];

  deviceConnected(deviceId: string): void {
    this.log.push(`connected ${deviceId}`);
  }
  deviceDisconnected(deviceId: string): void {
    this.log.push(`disconnected ${deviceId}`);
  }
  deviceMessage(deviceId: string, channel: UpChannel, payload: Buffer, packet: { retain: boolean; qos: 0 | 1 | 2 }): void {
    this.messages.push({ deviceId, channel, payload: payload.toString(), ...packet });
  }
  policyViolation(deviceId: string | null, code: ErrorCode, detail: string): void {
    this.violations.push({ deviceId, code, detail });
  }
}

export const DEFAULT_DEVICES: Record<string, string> = {
  'dev-a': 'secret-a',
  'dev-b': 'secret-b',
};

export interface Harness {
  broker: FleetBroker;
  port: number;
  wsPort: number | null;
  registry: Registry;
  events: EventRecorder;
  secrets: Map<string, string>;
  /** connects a device with its own credential and waits for CONNACK 0 */
  device(deviceId: string, extra?: IClientOptions): Promise<MqttClient>;
  /** attempts a connect; resolves with the CONNACK return code (0 = accepted) */
  attempt(options: IClientOptions): Promise<{ code: number; client: MqttClient }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface HarnessOptions {
  devices?: Record<string, string>;
  maxPayloadBytes?: number;
  ws?: boolean;
  auth?: DeviceAuthenticator;
}

export const memoryAuthenticator = (secrets: Map<string, string>): DeviceAuthenticator => ({
  authenticate: (deviceId, secret) => secrets.get(deviceId) === secret.toString(),
});

export async function startBroker(opts: HarnessOptions = {}): Promise<Harness> {
  const secrets = new Map(Object.entries(opts.devices ?? DEFAULT_DEVICES));
  const registry = new Registry();
  const events = new EventRecorder();
  const broker = await FleetBroker.create({
    auth: opts.auth ?? memoryAuthenticator(secrets),
    events,
    logger: pino({ level: 'silent' }),
    registry,
    ...(opts.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: opts.maxPayloadBytes }),
  });
  onTestFinished(() => broker.close());
  const { tcpPort, wsPort } = await broker.listen({ host: '127.0.0.1', tcpPort: 0, wsPort: opts.ws ? 0 : null });

  const open = (options: IClientOptions): MqttClient => {
    const client = connect({ host: '127.0.0.1', port: tcpPort, protocol: 'mqtt', reconnectPeriod: 0, connectTimeout: 5_000, ...options });
    client.on('error', () => {}); // outcomes are observed through the helpers below
    onTestFinished(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
    return client;
  };

  const attempt = (options: IClientOptions) =>
    new Promise<{ code: number; client: MqttClient }>((resolve, reject) => {
      const client = open(options);
      client.once('connect', () => resolve({ code: 0, client }));
      client.once('error', (err) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') resolve({ code, client });
        else reject(err);
      });
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });

  return {
    broker,
    port: tcpPort,
    wsPort,
    registry,
    events,
    secrets,
    attempt,
    async device(deviceId, extra = {}) {
      const { code, client } = await attempt({ clientId: deviceId, username: deviceId, password: secrets.get(deviceId) ?? '', ...extra });
      if (code !== 0) throw new Error(`device ${deviceId} refused with CONNACK ${code}`);
      return client;
    },
    async metric(name, labels = {}) {
      const metric = await registry.getSingleMetric(name)?.get();
      const value = metric?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
      return value?.value ?? 0;
    },
  };
}

/** Resolves when the broker closes this client's connection; rejects after a deadline. */
export function closedByBroker(client: MqttClient, deadlineMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected && client.disconnected) return resolve();
    const timer = setTimeout(() => reject(new Error('connection still open')), deadlineMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Publishes at QoS 1 and reports what the broker did: 'acked' (PUBACK) or 'closed' (connection
 * dropped without a PUBACK). Deterministic either way: no wait on time.
 */
export function publishOutcome(client: MqttClient, topic: string, payload: string | Buffer, retain = false): Promise<'acked' | 'closed'> {
  return new Promise((resolve) => {
    client.once('close', () => resolve('closed'));
    client.publish(topic, payload, { qos: 1, retain }, (err) => {
      if (!err) resolve('acked');
    });
  });
}

/** A round trip through the broker (SUBSCRIBE → SUBACK), to know earlier packets were handled. */
export async function roundTrip(client: MqttClient): Promise<void> {
  await client.unsubscribeAsync('flt/v1/d/none/desired');
}

/** Subscribes to the filters in one SUBSCRIBE and resolves with the SUBACK return codes (128 = refused). */
export function subackCodes(client: MqttClient, filters: string[], qos: 0 | 1 = 1): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(Object.fromEntries(filters.map((f) => [f, { qos }])), (err, granted) => {
      // mqtt.js reports any refused filter as an error that carries the SUBACK packet.
      const refused = (err as { packet?: { granted?: number[] } } | null | undefined)?.packet?.granted;
      if (refused) resolve(refused);
      else if (err) reject(err);
      else resolve((granted ?? []).map((g) => g.qos));
    });
  });
}

export async function subackCode(client: MqttClient, filter: string): Promise<number> {
  const [code] = await subackCodes(client, [filter]);
  return code ?? -1;
}
