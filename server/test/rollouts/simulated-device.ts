import mqtt, { type MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, enrollAccepted, type TestServer } from '../helpers/server.ts';

/**
 * Simulated devices: plain mqtt.js clients that answer every desired state with a report of each
 * model healthy at the desired version, the way a well-behaved agent ends up. No agent code runs.
 */
export async function simulatedDevice(t: { mqtt: string }, deviceId: string, credential: string): Promise<MqttClient> {
  const client = mqtt.connect(t.mqtt, { clientId: deviceId, username: deviceId, password: credential, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  client.on('message', (_topic, payload) => {
    const decoded = decodeMessage('desired', payload);
    if (!decoded.ok || decoded.message.type !== 'desired') return;
    const desired = decoded.message.body;
    const models = Object.fromEntries(Object.entries(desired.models).map(([name, m]) => [name, { version: m.version, state: 'healthy' as const }]));
    client.publish(deviceTopic(deviceId, 'reported'), encodeMessage('reported', { appliedGeneration: desired.generation, models }).payload, { qos: 1 });
  });
  await client.subscribeAsync(deviceTopic(deviceId, 'desired'), { qos: 1 });
  return client;
}

/** Enrolls, accepts and labels each device, and connects a simulated device for it. */
export async function simulatedFleet(t: TestServer, ids: readonly string[], labels: Record<string, string>): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  for (const id of ids) {
    const credential = await enrollAccepted(t, id);
    await t.server.http.inject({ method: 'PATCH', url: `/v1/devices/${id}/labels`, headers: auth(ADMIN_TOKEN), payload: { set: labels } });
    clients.push(await simulatedDevice(t, id, credential));
  }
  return clients;
}

/** Calls `fn` until `ok` holds or `ms` passed; returns the last value either way. */
export async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
