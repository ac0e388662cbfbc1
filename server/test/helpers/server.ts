import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { decodeMessage, deviceTopic } from '@flotilla/protocol';
import { buildServer, type FlotillaServer } from '../../src/index.ts';
import type { ServerConfigInput } from '../../src/config/schema.ts';

export const ADMIN_TOKEN = 'flta_test-admin-token-0123456789abcdef';
export const ENROLL_TOKEN = 'flte_test-enrollment-token-0123456789';

export interface TestServer {
  server: FlotillaServer;
  dataDir: string;
  http: string;
  mqtt: string;
  close(): Promise<void>;
}

/**
 * A real server on ephemeral ports with its SQLite file in a fresh temp folder. `close()` stops it
 * and removes the folder; callers register it with afterEach/afterAll right where they start it.
 */
export async function startServer(overrides: ServerConfigInput = {}, opts: { dataDir?: string; now?: () => number } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'flt-server-'));
  const server = await buildServer(
    {
      dataDir,
      logLevel: 'silent',
      adminToken: ADMIN_TOKEN,
      enrollmentToken: ENROLL_TOKEN,
      http: { host: '127.0.0.1', port: 0 },
      mqtt: { host: '127.0.0.1', tcpPort: 0, wsPort: null },
      shutdownTimeoutMs: 3000,
      ...overrides,
    },
    { logger: pino({ level: 'silent' }), ...(opts.now ? { now: opts.now } : {}) },
  );
  const addr = await server.listen();
  return {
    server,
    dataDir,
    http: addr.http,
    mqtt: addr.mqtt,
    close: async () => {
      await server.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates an API token of a role through the admin API itself. */
export async function tokenFor(t: TestServer, role: 'admin' | 'operator' | 'viewer'): Promise<string> {
  const res = await t.server.http.inject({
    method: 'POST',
    url: '/v1/tokens',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    payload: { name: `${role}-token`, role },
  });
  if (res.statusCode !== 201) throw new Error(`token creation failed: ${res.body}`);
  return (res.json() as { token: string }).token;
}

export function auth(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** A valid enrollment body for a device id, with a per-device enrollment key. */
export function enrollBody(deviceId: string, extra: Record<string, unknown> = {}) {
  return {
    enrollmentToken: ENROLL_TOKEN,
    deviceId,
    enrollmentKey: `key-${deviceId}-`.padEnd(40, 'k').replace(/[^A-Za-z0-9_-]/g, '_'),
    ...extra,
  };
}

/** Enrolls and accepts a device; returns its credential. */
export async function enrollAccepted(t: TestServer, deviceId: string): Promise<string> {
  const inject = (payload: unknown) => t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: payload as object });
  let res = await inject(enrollBody(deviceId));
  if (res.statusCode === 202) {
    const acc = await t.server.http.inject({ method: 'POST', url: `/v1/devices/${deviceId}/accept`, headers: auth(ADMIN_TOKEN) });
    if (acc.statusCode !== 200) throw new Error(`accept failed: ${acc.body}`);
    res = await inject(enrollBody(deviceId));
  }
  if (res.statusCode !== 200) throw new Error(`enroll failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { credential: string }).credential;
}

/**
 * An accepted device connected over MQTT with its credential, subscribed to its acknowledgements:
 * `acks` collects every event id the server acknowledged. The caller ends `client`.
 */
export async function connectedDevice(t: TestServer, deviceId: string): Promise<{ client: MqttClient; credential: string; acks: string[] }> {
  const credential = await enrollAccepted(t, deviceId);
  const client = mqtt.connect(t.mqtt, { clientId: deviceId, username: deviceId, password: credential, clean: true, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(deviceTopic(deviceId, 'ack'), { qos: 1 });
  const acks: string[] = [];
  client.on('message', (topic, payload) => {
    const m = decodeMessage('ack', payload);
    if (topic.endsWith('/ack') && m.ok) acks.push(...m.message.body.ids);
  });
  return { client, credential, acks };
}
