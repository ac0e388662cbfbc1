import fc from 'fast-check';
import net from 'node:net';
import { MqttClient } from 'mqtt';
import { MAX_MQTT_PAYLOAD_BYTES, UP_CHANNELS, decodeMessage, devicePrefix, deviceTopic, type UpChannel } from '@flotilla/protocol';
import type { FlotillaServer } from '@flotilla/server';
import { ADMIN_TOKEN, auth, enrollBody } from '../../../server/test/helpers/server.ts';
import { channelPayload, type Payload } from '../arbitraries/envelopes.ts';
import { FuzzProbe, checkTarget, type RunOptions, type TargetReport } from '../harness/fuzz-report.ts';
import { startFuzzServer } from '../harness/fuzz-server.ts';

const DEVICE = 'fuzz-device-1';
/** Liveness bound for one message to be handled, a connection to close or an ack to arrive. */
const DEADLINE_MS = 10_000;
/** Runs between checks that the HTTP side still answers /healthz. */
const HEALTH_EVERY = 250;

async function enroll(server: FlotillaServer): Promise<string> {
  const post = () => server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody(DEVICE) });
  let res = await post();
  if (res.statusCode === 202) {
    await server.http.inject({ method: 'POST', url: `/v1/devices/${DEVICE}/accept`, headers: auth(ADMIN_TOKEN) });
    res = await post();
  }
  if (res.statusCode !== 200) throw new Error(`enrollment failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { credential: string }).credential;
}

/** Messages the server's ingest has handled: accepted plus refused, across channels and codes. */
async function handled(server: FlotillaServer): Promise<{ accepted: number; refused: number }> {
  const sum = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values.reduce((a, v) => a + v.value, 0);
  return { accepted: await sum(server.metrics.deviceMessages), refused: await sum(server.metrics.deviceMessagesRejected) };
}

/** Oversize publishes the broker refused (docs/mqtt.md: counted with FLT_MSG_TOO_LARGE). */
async function tooLargeRefusals(server: FlotillaServer): Promise<number> {
  const metric = server.metrics.registry.getSingleMetric('flotilla_broker_policy_violations_total');
  if (!metric) throw new Error('the broker policy violation counter is not registered');
  const { values } = await metric.get();
  return values.filter((v) => v.labels.code === 'FLT_MSG_TOO_LARGE').reduce((a, v) => a + v.value, 0);
}

async function until<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what} did not happen within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** The device's own MQTT session, reopened after the broker closes it; collects the acks it receives. */
class DeviceSession {
  client: MqttClient | null = null;
  closed = false;
  readonly acked = new Set<string>();
  constructor(
    private readonly url: string,
    private readonly credential: string,
  ) {}

  async open(): Promise<MqttClient> {
    const { hostname, port } = new URL(this.url);
    // TCP_NODELAY as the agent sets it: without it Nagle holds each small publish back.
    const client = new MqttClient(() => net.createConnection({ host: hostname, port: Number(port), noDelay: true }), {
      clientId: DEVICE,
      username: DEVICE,
      password: this.credential,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: DEADLINE_MS,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('the broker closed the connection before CONNACK')));
    });
    this.closed = false;
    client.on('close', () => (this.closed = true));
    client.on('error', () => undefined);
    client.on('message', (topic, payload) => {
      if (!topic.endsWith('/ack')) return;
      const ids = (JSON.parse(payload.toString()) as { body: { ids: string[] } }).body.ids;
      for (const id of ids) this.acked.add(id);
    });
    await client.subscribeAsync(`${devicePrefix(DEVICE)}/+`, { qos: 1 });
    this.client = client;
    return client;
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => undefined);
    this.client = null;
  }
}

/**
 * A real server and a real enrolled device publishing fuzzed payloads on its own up channels over
 * TCP. Every payload within the size limit is handled by the ingest (accepted or refused with a
 * code, as the codec decides) and the device stays connected; every payload over it closes the
 * connection without reaching the ingest (docs/mqtt.md); valid events are acknowledged.
 */
export async function fuzzMqttIngest(opts: RunOptions): Promise<TargetReport> {
  const probe = new FuzzProbe();
  const s = await startFuzzServer(probe);
  const session = new DeviceSession(s.mqtt, await enroll(s.server).catch(async (err: unknown) => {
    await s.close();
    throw err;
  }));
  try {
    await session.open();
    const input = fc.constantFrom(...UP_CHANNELS).chain((channel) => fc.tuple(fc.constant(channel), channelPayload(channel, { oversize: true }), fc.constantFrom<0 | 1>(0, 1)));
    let n = 0;
    const property = fc.asyncProperty(input, async ([channel, payload, qos]: [UpChannel, Payload, 0 | 1]) => {
      if (!session.client || session.closed) await session.open();
      const client = session.client!;
      const before = await handled(s.server);
      const topic = deviceTopic(DEVICE, channel);

      if (++n % HEALTH_EVERY === 0) {
        const health = await fetch(`${s.http}/healthz`);
        if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);
      }

      if (payload.bytes.length > MAX_MQTT_PAYLOAD_BYTES) {
        const refusedBefore = await tooLargeRefusals(s.server);
        client.publish(topic, payload.bytes, { qos: 0 });
        await until('closing the connection on an oversize payload', () => session.closed, (c) => c);
        const after = await handled(s.server);
        if (after.accepted + after.refused !== before.accepted + before.refused) throw new Error('an oversize payload reached the ingest');
        if ((await tooLargeRefusals(s.server)) <= refusedBefore) throw new Error('the oversize payload was not counted as FLT_MSG_TOO_LARGE');
        probe.tally('oversize:connection-closed');
        await session.close();
        return probe.assertClean();
      }

      const oracle = decodeMessage(channel, payload.bytes);
      await client.publishAsync(topic, payload.bytes, { qos });
      const after = await until('the ingest handling the message', () => handled(s.server), (h) => h.accepted + h.refused > before.accepted + before.refused);
      if (after.accepted + after.refused !== before.accepted + before.refused + 1) throw new Error('one publish was handled more than once');
      const accepted = after.accepted > before.accepted;
      if (accepted !== oracle.ok) throw new Error(`ingest ${accepted ? 'accepted' : 'refused'} what the codec ${oracle.ok ? 'accepts' : `refuses (${oracle.code})`}`);
      if (oracle.ok && oracle.message.type === 'event') {
        const id = oracle.message.id;
        await until(`the ack of event ${id}`, () => session.acked.has(id), (a) => a);
      }
      if (session.closed) throw new Error('the device was disconnected for a payload within the limit');
      probe.tally(oracle.ok ? `${channel}:accepted` : `${channel}:${oracle.code}`);
      return probe.assertClean();
    });
    const report = await checkTarget('mqtt-ingest', probe, property, { ...opts, endOnFailure: opts.endOnFailure ?? true });
    // Still serving both protocols after the run.
    const health = await fetch(`${s.http}/healthz`);
    if (health.status !== 200) report.crashes++;
    if (!session.client || session.closed) await session.open();
    return report;
  } finally {
    await session.close();
    await s.close();
  }
}
