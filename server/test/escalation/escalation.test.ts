import mqtt, { type MqttClient } from 'mqtt';
import { beforeEach, describe, expect, it } from 'vitest';
import { decodeMessage, deviceTopic, encodeMessage, HARD_EXAMPLE_EVENT, type DesiredState, type HardExampleData } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';

const admin = auth(ADMIN_TOKEN);

function connectDevice(t: TestServer, deviceId: string, credential: string): Promise<MqttClient> {
  const client = mqtt.connect(t.mqtt, { clientId: deviceId, username: deviceId, password: credential, clean: true, reconnectPeriod: 0 });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
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

const pool = (region: string, port: number, weight?: number) => ({ region, endpoints: [`http://10.0.0.${port}:8000`], models: ['mnist-cloud'], ...(weight !== undefined && { weight }) });

function example(overrides: Partial<HardExampleData> = {}): HardExampleData {
  return {
    model: 'mnist-edge',
    version: '1.0.0',
    cloudModel: 'mnist-cloud',
    answeredBy: 'edge-fallback',
    reason: { policy: 'max-prob', value: 0.61, threshold: 0.8 },
    requestId: 'req-1',
    error: 'FLT_ESCALATION_BUDGET_EXCEEDED',
    input: [{ name: 'input', datatype: 'FP32', shape: [1, 4], b64: Buffer.from(new Float32Array([0.1, 0.2, 0.3, 0.4]).buffer).toString('base64') }],
    edgeOutput: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 2], b64: Buffer.from(new Float32Array([0.61, 0.39]).buffer).toString('base64') }],
    at: 1_700_000_000_000,
    ...overrides,
  };
}

describe('cloud pools, escalation policies and hard examples', () => {
  let t: TestServer;
  let client: MqttClient | undefined;
  beforeEach(async () => {
    t = await startServer();
    return async () => {
      client?.end(true);
      client = undefined;
      await t.close();
    };
  });

  const desiredOf = async (id: string) => (await t.server.http.inject({ method: 'GET', url: `/v1/devices/${id}`, headers: admin })).json().desired as DesiredState | null;

  it("gives every accepted device its models' policy and the pools serving them, same region first, then by weight", async () => {
    await enrollAccepted(t, 'edge-us');
    await enrollAccepted(t, 'edge-eu');
    await t.server.http.inject({ method: 'PATCH', url: '/v1/devices/edge-us/labels', headers: admin, payload: { set: { region: 'us-east' } } });
    await t.server.http.inject({ method: 'PATCH', url: '/v1/devices/edge-eu/labels', headers: admin, payload: { set: { region: 'eu-west' } } });
    expect((await t.server.http.inject({ method: 'PUT', url: '/v1/pools/eu-a100', headers: admin, payload: pool('eu-west', 1) })).statusCode).toBe(201);
    expect((await t.server.http.inject({ method: 'PUT', url: '/v1/pools/us-small', headers: admin, payload: pool('us-east', 2, 10) })).statusCode).toBe(201);
    expect((await t.server.http.inject({ method: 'PUT', url: '/v1/pools/us-big', headers: admin, payload: pool('us-east', 3, 500) })).statusCode).toBe(201);
    const put = await t.server.http.inject({ method: 'PUT', url: '/v1/escalation-policies/mnist-edge', headers: admin, payload: { maxProbBelow: 0.8, cloudModel: 'mnist-cloud', budgetMs: 200 } });
    expect(put.statusCode).toBe(200);

    const us = await desiredOf('edge-us');
    expect(us?.escalation?.['mnist-edge']?.policy).toEqual({ maxProbBelow: 0.8, cloudModel: 'mnist-cloud', budgetMs: 200 });
    expect(us?.escalation?.['mnist-edge']?.routes.map((r) => r.pool)).toEqual(['us-big', 'us-small', 'eu-a100']);
    expect((await desiredOf('edge-eu'))?.escalation?.['mnist-edge']?.routes.map((r) => r.pool)).toEqual(['eu-a100', 'us-big', 'us-small']);

    // A pool that no longer serves the model drops out of the routing.
    await t.server.http.inject({ method: 'PUT', url: '/v1/pools/us-big', headers: admin, payload: { ...pool('us-east', 3, 500), models: ['other'] } });
    expect((await desiredOf('edge-us'))?.escalation?.['mnist-edge']?.routes.map((r) => r.pool)).toEqual(['us-small', 'eu-a100']);

    const audit = (await t.server.http.inject({ method: 'GET', url: '/v1/audit', headers: admin })).json() as { items: Array<{ action: string; target: string }> };
    expect(audit.items.map((a) => `${a.action} ${a.target}`)).toEqual(expect.arrayContaining(['pool.create eu-a100', 'pool.update us-big', 'escalation.policy.set mnist-edge']));

    expect((await t.server.http.inject({ method: 'DELETE', url: '/v1/escalation-policies/mnist-edge', headers: admin })).statusCode).toBe(204);
    expect((await desiredOf('edge-us'))?.escalation).toBeUndefined();
  });

  it('keeps the models of the desired state when it rewrites the escalation section, under a new generation', async () => {
    await enrollAccepted(t, 'edge-1');
    await t.server.http.inject({ method: 'PUT', url: '/v1/devices/edge-1/desired', headers: admin, payload: { models: { 'mnist-edge': { version: '1.0.0' } } } });
    const before = await desiredOf('edge-1');
    await t.server.http.inject({ method: 'PUT', url: '/v1/escalation-policies/mnist-edge', headers: admin, payload: { entropyAbove: 0.5 } });
    const after = await desiredOf('edge-1');
    expect(after?.models).toEqual({ 'mnist-edge': { version: '1.0.0' } });
    expect(after!.generation).toBe(before!.generation + 1);
    expect(after?.escalation?.['mnist-edge']).toEqual({ policy: { entropyAbove: 0.5 }, routes: [] });
    // Setting the same policy again changes nothing on the devices.
    await t.server.http.inject({ method: 'PUT', url: '/v1/escalation-policies/mnist-edge', headers: admin, payload: { entropyAbove: 0.5 } });
    expect((await desiredOf('edge-1'))!.generation).toBe(after!.generation);
  });

  it('sends a device its escalation routing when it connects, retained on its desired topic', async () => {
    await t.server.http.inject({ method: 'PUT', url: '/v1/pools/p1', headers: admin, payload: pool('eu', 1) });
    await t.server.http.inject({ method: 'PUT', url: '/v1/escalation-policies/mnist-edge', headers: admin, payload: { maxProbBelow: 0.9, cloudModel: 'mnist-cloud' } });
    // Admin replaces the desired state wholesale; the next connect brings routing back.
    const credential = await enrollAccepted(t, 'late-1');
    await t.server.http.inject({ method: 'PUT', url: '/v1/devices/late-1/desired', headers: admin, payload: { models: {} } });
    client = await connectDevice(t, 'late-1', credential);
    const got = new Promise<Buffer>((r) => client!.on('message', (_topic, payload) => r(payload)));
    await until(() => desiredOf('late-1'), (d) => d?.escalation !== undefined);
    await client.subscribeAsync(deviceTopic('late-1', 'desired'), { qos: 1 });
    const decoded = decodeMessage('desired', await got);
    expect(decoded.ok && decoded.message.body.escalation?.['mnist-edge']?.routes).toEqual([{ pool: 'p1', region: 'eu', endpoints: ['http://10.0.0.1:8000'] }]);
  });

  it('stores a hard example sent as a durable device event, acknowledges it, and exports it as JSON Lines', async () => {
    const credential = await enrollAccepted(t, 'edge-7');
    client = await connectDevice(t, 'edge-7', credential);
    await client.subscribeAsync(deviceTopic('edge-7', 'ack'), { qos: 1 });
    const acks: string[] = [];
    client.on('message', (topic, payload) => {
      const m = decodeMessage('ack', payload);
      if (topic.endsWith('/ack') && m.ok) acks.push(...m.message.body.ids);
    });
    const good = encodeMessage('events', { kind: HARD_EXAMPLE_EVENT, seq: 1, data: example() as unknown as Record<string, unknown> });
    const cloudAnswered = encodeMessage('events', {
      kind: HARD_EXAMPLE_EVENT,
      seq: 2,
      data: example({ answeredBy: 'cloud', requestId: 'req-2', error: undefined, cloudVersion: '3', cloudOutput: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 2], b64: 'AAAAAAAAgD8=' }] }) as unknown as Record<string, unknown>,
    });
    const bad = encodeMessage('events', { kind: HARD_EXAMPLE_EVENT, seq: 3, data: { model: 'mnist-edge' } });
    const topic = deviceTopic('edge-7', 'events');
    await client.publishAsync(topic, good.payload, { qos: 1 });
    await client.publishAsync(topic, good.payload, { qos: 1 }); // a resend after a lost ack
    await client.publishAsync(topic, cloudAnswered.payload, { qos: 1 });
    await client.publishAsync(topic, bad.payload, { qos: 1 });
    await until(() => acks.length, (n) => n >= 4);
    expect(new Set(acks)).toEqual(new Set([good.message.id, cloudAnswered.message.id, bad.message.id]));

    const jsonl = await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples?model=mnist-edge&format=jsonl', headers: admin });
    expect(jsonl.statusCode).toBe(200);
    expect(jsonl.headers['content-type']).toContain('application/x-ndjson');
    const lines = jsonl.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ deviceId: 'edge-7', eventId: good.message.id, model: 'mnist-edge', version: '1.0.0', answeredBy: 'edge-fallback', reason: { policy: 'max-prob', value: 0.61, threshold: 0.8 }, cloudOutput: null });
    expect(Buffer.from((lines[0]!.input as Array<{ b64: string }>)[0]!.b64, 'base64').byteLength).toBe(16);
    expect(lines[1]).toMatchObject({ answeredBy: 'cloud', cloudVersion: '3', cloudOutput: [{ name: 'probabilities' }] });

    const page = (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples?limit=1', headers: admin })).json() as { items: Array<{ seq: number }>; nextAfter: number | null };
    expect(page.items).toHaveLength(1);
    const next = (await t.server.http.inject({ method: 'GET', url: `/v1/hard-examples?limit=1&after=${page.nextAfter}`, headers: admin })).json() as { items: Array<{ requestId: string }> };
    expect(next.items[0]?.requestId).toBe('req-2');
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples?since=1800000000000', headers: admin })).json().items).toEqual([]);

    // The invalid one is kept in the device's event log with its code, not as a hard example.
    const events = (await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-7/events', headers: admin })).json() as { items: Array<{ id: string; data: Record<string, unknown> }> };
    expect(events.items.find((e) => e.id === bad.message.id)?.data).toMatchObject({ code: 'FLT_ESCALATION_EXAMPLE_INVALID' });
    expect(events.items.find((e) => e.id === good.message.id)?.data).toMatchObject({ storedIn: 'hard_examples', requestId: 'req-1' });
  });

  it('answers 404 FLT_POOL_NOT_FOUND and FLT_ESCALATION_POLICY_NOT_FOUND for unknown names', async () => {
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/pools/nope', headers: admin })).json()).toMatchObject({ code: 'FLT_POOL_NOT_FOUND' });
    expect((await t.server.http.inject({ method: 'DELETE', url: '/v1/pools/nope', headers: admin })).statusCode).toBe(404);
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/escalation-policies/nope', headers: admin })).json()).toMatchObject({ code: 'FLT_ESCALATION_POLICY_NOT_FOUND' });
  });

  it('refuses a pool with an endpoint that is not an http(s) URL, and a policy threshold outside [0, 1]', async () => {
    const badPool = await t.server.http.inject({ method: 'PUT', url: '/v1/pools/p', headers: admin, payload: { region: 'eu', endpoints: ['ftp://x'], models: ['m'] } });
    expect(badPool.statusCode).toBe(400);
    const badPolicy = await t.server.http.inject({ method: 'PUT', url: '/v1/escalation-policies/m', headers: admin, payload: { maxProbBelow: 1.5 } });
    expect(badPolicy.statusCode).toBe(400);
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/pools', headers: admin })).json().items).toEqual([]);
  });
});
