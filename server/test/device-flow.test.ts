import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopic, encodeMessage, decodeMessage, MAX_MQTT_PAYLOAD_BYTES, type ChannelMessageMap } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from './helpers/server.ts';

const inventory: ChannelMessageMap['inventory']['body'] = {
  arch: 'arm64',
  os: { platform: 'linux', release: '5.15.136-tegra', distro: 'Ubuntu 22.04' },
  cpu: { model: 'ARMv8 Processor rev 1 (v8l)', cores: 6 },
  memoryBytes: 8 * 2 ** 30,
  disk: { path: '/var/lib/flotilla', totalBytes: 64e9, freeBytes: 30e9 },
  gpu: { name: 'Orin', computeCapability: '8.7' },
  cudaVersion: '12.2',
  tensorrtVersion: '8.6.2',
  jetpackVersion: '6.0',
  executionProviders: ['tensorrt', 'cuda', 'cpu'],
  agentVersion: '0.1.0',
};

function connectDevice(t: TestServer, deviceId: string, credential: string): Promise<MqttClient> {
  const client = mqtt.connect(t.mqtt, {
    clientId: deviceId,
    username: deviceId,
    password: credential,
    clean: false,
    reconnectPeriod: 0,
    will: { topic: deviceTopic(deviceId, 'status'), payload: encodeMessage('status', { state: 'offline' }).payload, qos: 1, retain: true },
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

function nextMessage(client: MqttClient, topic: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve(payload);
    };
    client.on('message', onMessage);
  });
}

async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('device flow over the embedded broker', () => {
  let t: TestServer;
  let client: MqttClient | undefined;
  let credential: string;
  beforeEach(async () => {
    t = await startServer();
    credential = await enrollAccepted(t, 'jetson-1');
  });
  afterEach(async () => {
    client?.end(true);
    client = undefined;
    await t.close();
  });

  const device = async () =>
    (await t.server.http.inject({ method: 'GET', url: '/v1/devices/jetson-1', headers: auth(ADMIN_TOKEN) })).json() as {
      online: boolean;
      inventory: unknown;
      inSync: boolean;
      reported: unknown;
      lastSeenAt: number | null;
    };

  it('tracks presence from connect, status messages and disconnect', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    expect((await until(device, (d) => d.online)).online).toBe(true);
    client.end(true);
    client = undefined;
    expect((await until(device, (d) => !d.online)).online).toBe(false);
  });

  it('stores the inventory a device reports', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    await client.publishAsync(deviceTopic('jetson-1', 'inventory'), encodeMessage('inventory', inventory).payload, { qos: 1 });
    expect((await until(device, (d) => d.inventory !== null)).inventory).toEqual(inventory);
  });

  it('delivers desired state retained and marks the device in sync once it reports that generation', async () => {
    await t.server.http.inject({ method: 'PUT', url: '/v1/devices/jetson-1/desired', headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
    client = await connectDevice(t, 'jetson-1', credential);
    const got = nextMessage(client, deviceTopic('jetson-1', 'desired'));
    await client.subscribeAsync(deviceTopic('jetson-1', 'desired'), { qos: 1 });
    const desired = decodeMessage('desired', await got);
    expect(desired.ok && desired.message.body).toEqual({ generation: 1, models: { digits: { version: '1.0.0' } } });

    const reported = { appliedGeneration: 1, models: { digits: { version: '1.0.0', state: 'healthy' as const } } };
    await client.publishAsync(deviceTopic('jetson-1', 'reported'), encodeMessage('reported', reported).payload, { qos: 1 });
    const d = await until(device, (x) => x.inSync);
    expect(d.inSync).toBe(true);
    expect(d.reported).toEqual(reported);
  });

  it('issues its desired state again above a generation it never issued (database restored from an older backup), and counts on from there', async () => {
    await t.server.http.inject({ method: 'PUT', url: '/v1/devices/jetson-1/desired', headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.0.0' } } } });
    client = await connectDevice(t, 'jetson-1', credential);
    await client.subscribeAsync(deviceTopic('jetson-1', 'desired'), { qos: 1 });
    const generations: number[] = [];
    client.on('message', (topic, payload) => {
      const m = decodeMessage('desired', payload);
      if (topic === deviceTopic('jetson-1', 'desired') && m.ok) generations.push(m.message.body.generation);
    });
    // The device applied generation 7 from the server as it was before the restore.
    const ahead = { appliedGeneration: 7, models: { digits: { version: '2.0.0', state: 'healthy' as const } } };
    await client.publishAsync(deviceTopic('jetson-1', 'reported'), encodeMessage('reported', ahead).payload, { qos: 1 });
    expect(await until(() => generations, (g) => g.includes(8))).toContain(8);
    expect((await device()) as unknown).toMatchObject({ desired: { generation: 8, models: { digits: { version: '1.0.0' } } } });
    const next = await t.server.http.inject({ method: 'PUT', url: '/v1/devices/jetson-1/desired', headers: auth(ADMIN_TOKEN), payload: { models: { digits: { version: '1.1.0' } } } });
    expect((next.json() as { desired: { generation: number } }).desired.generation).toBe(9);
  });

  it('acknowledges durable events only after storing them, and stores a resent event once', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    await client.subscribeAsync(deviceTopic('jetson-1', 'ack'), { qos: 1 });
    const ev = encodeMessage('events', { kind: 'model.installed', seq: 1, data: { version: '1.0.0' } });
    for (let i = 0; i < 2; i++) {
      const ack = nextMessage(client, deviceTopic('jetson-1', 'ack'));
      await client.publishAsync(deviceTopic('jetson-1', 'events'), ev.payload, { qos: 1 });
      const decoded = decodeMessage('ack', await ack);
      expect(decoded.ok && decoded.message.body.ids).toEqual([ev.message.id]);
      // The ack means committed: the event is readable at that moment.
      const events = (await t.server.http.inject({ method: 'GET', url: '/v1/devices/jetson-1/events', headers: auth(ADMIN_TOKEN) })).json() as { items: Array<{ id: string }> };
      expect(events.items.map((e) => e.id)).toEqual([ev.message.id]);
    }
  });

  it('counts and drops malformed, unknown, wrong-version and mistyped messages without changing state', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    await client.publishAsync(deviceTopic('jetson-1', 'inventory'), encodeMessage('inventory', inventory).payload, { qos: 1 });
    await until(device, (d) => d.inventory !== null);
    const bad = [
      '{not json',
      JSON.stringify({ v: 1, type: 'selfdestruct', id: 'abcdefgh1', ts: 1, body: {} }),
      JSON.stringify({ v: 99, type: 'inventory', id: 'abcdefgh2', ts: 1, body: inventory }),
      JSON.stringify({ v: 1, type: 'inventory', id: 'abcdefgh3', ts: 1, body: { ...inventory, arch: 42 } }),
      JSON.stringify({ v: 1, type: 'heartbeat', id: 'abcdefgh4', ts: 1, body: { uptimeSec: 1 } }),
      '['.repeat(5000) + ']'.repeat(5000),
    ];
    for (const p of bad) await client.publishAsync(deviceTopic('jetson-1', 'inventory'), Buffer.from(p), { qos: 1 });
    const text = await until(
      () => t.server.metrics.registry.getSingleMetricAsString('flotilla_device_messages_rejected_total'),
      (s) => ['FLT_MSG_MALFORMED_JSON', 'FLT_MSG_UNKNOWN_TYPE', 'FLT_MSG_BAD_VERSION', 'FLT_MSG_INVALID', 'FLT_MSG_WRONG_CHANNEL', 'FLT_MSG_TOO_DEEP'].every((c) => s.includes(c)),
    );
    for (const code of ['FLT_MSG_MALFORMED_JSON', 'FLT_MSG_UNKNOWN_TYPE', 'FLT_MSG_BAD_VERSION', 'FLT_MSG_INVALID', 'FLT_MSG_WRONG_CHANNEL', 'FLT_MSG_TOO_DEEP']) {
      expect(text).toContain(`code="${code}"`);
    }
    expect((await device()).inventory).toEqual(inventory);
    expect(client.connected).toBe(true);
  });

  it('closes the connection of a device that sends an oversize payload, and keeps running', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    const closed = new Promise<void>((r) => client!.once('close', () => r()));
    client.publish(deviceTopic('jetson-1', 'events'), Buffer.alloc(MAX_MQTT_PAYLOAD_BYTES + 1024, 0x20), { qos: 0 });
    await closed;
    expect((await fetch(`${t.http}/healthz`)).status).toBe(200);
  });

  it('kicks a device at once when it is revoked, and refuses its credential afterwards', async () => {
    client = await connectDevice(t, 'jetson-1', credential);
    const closed = new Promise<void>((r) => client!.once('close', () => r()));
    const res = await t.server.http.inject({ method: 'POST', url: '/v1/devices/jetson-1/revoke', headers: auth(ADMIN_TOKEN) });
    expect(res.statusCode).toBe(200);
    await closed;
    client.end(true);
    client = undefined;
    await expect(connectDevice(t, 'jetson-1', credential)).rejects.toThrow();
  });
});
