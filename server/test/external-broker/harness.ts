/**
 * The external broker side by side with the embedded broker's harness: a real mosquitto with
 * dynamic security, an ExternalBroker joined to it as the privileged client, devices provisioned
 * through the dynsec provisioner, and mqtt.js "devices". Everything is closed when the test ends.
 */
import { encodeMessage } from '@flotilla/protocol';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { pino } from 'pino';
import { onTestFinished } from 'vitest';
import { ExternalBroker } from '../../src/broker/external/external-broker.ts';
import { EventRecorder } from '../broker/harness.ts';
import { ADMIN_PASSWORD, ADMIN_USER, startMosquitto } from './mosquitto.ts';
import type { Mosquitto } from './mosquitto.ts';

export const SECRETS: Record<string, string> = { 'dev-a': 'secret-a-0123456789', 'dev-b': 'secret-b-0123456789', 'dev-ab': 'secret-ab-0123456789' };

export interface ExternalHarness {
  mosquitto: Mosquitto;
  broker: ExternalBroker;
  events: EventRecorder;
  /** devices the "database" holds as active; revoke by deleting, then kick */
  active: Set<string>;
  attempt(options: IClientOptions): Promise<{ code: number; client: MqttClient }>;
  /** connects a provisioned device with its own credential */
  device(deviceId: string, extra?: IClientOptions): Promise<MqttClient>;
}

export type Cleanup = (fn: () => Promise<void>) => void;

/** `cleanup` registers the teardown (default: when the calling test finishes). Clients made by attempt() always go with their test. */
export async function startExternal(devices: string[] = ['dev-a', 'dev-b'], cleanup: Cleanup = onTestFinished): Promise<ExternalHarness> {
  const mosquitto = await startMosquitto(cleanup);
  const events = new EventRecorder();
  const active = new Set(devices);
  const broker = new ExternalBroker({
    url: mosquitto.url,
    username: ADMIN_USER,
    password: ADMIN_PASSWORD,
    provisioner: 'mosquitto-dynsec',
    requestTimeoutMs: 5_000,
    events,
    logger: pino({ level: process.env.FLT_TEST_LOG ?? 'silent' }),
    isActive: (id) => active.has(id),
  });
  cleanup(() => broker.close());
  await broker.listen();
  for (const id of devices) await broker.provisioner!.grant(id, SECRETS[id]!);

  const attempt = (options: IClientOptions) =>
    new Promise<{ code: number; client: MqttClient }>((resolve, reject) => {
      const client = connect(mosquitto.url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
      client.setMaxListeners(50);
      onTestFinished(() => new Promise<void>((done) => client.end(true, {}, () => done())));
      client.on('error', () => {});
      client.once('connect', () => resolve({ code: 0, client }));
      client.once('error', (err) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') resolve({ code, client });
        else reject(err);
      });
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });

  return {
    mosquitto,
    broker,
    events,
    active,
    attempt,
    async device(deviceId, extra = {}) {
      const { code, client } = await attempt({ clientId: deviceId, username: deviceId, password: SECRETS[deviceId] ?? '', ...extra });
      if (code !== 0) throw new Error(`device ${deviceId} refused with CONNACK ${code}`);
      return client;
    },
  };
}

/** A status payload as the agent sends it. */
export function statusPayload(state: 'online' | 'offline'): Buffer {
  return encodeMessage('status', { state }).payload;
}
