/**
 * The simulated fleet for the broker bench: devices enroll over REST, connect with their own
 * credential the way the agent does (persistent session, last will, subscriptions on desired, ack
 * and cmd, retained `online` status), send durable events and wait for the server's `ack`, and
 * watch their retained desired state. One process holds every device.
 */
import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage } from '@flotilla/protocol';

export interface Endpoints {
  http: string;
  mqtt: string;
  enrollmentToken: string;
}

export interface EnrolledDevice {
  id: string;
  credential: string;
}

export interface Enrollment {
  devices: EnrolledDevice[];
  /** elapsed ms when each tenth of the requested devices was enrolled: shows whether the cost per device grows */
  progress: Array<{ enrolled: number; ms: number }>;
  /** true when the deadline stopped it before all `n` were enrolled */
  cutShort: boolean;
}

/**
 * Enrolls up to `n` devices (auto-accepted) with label fleet=bench. No new enrollment starts after
 * `deadline` (a performance.now() time): what was enrolled by then is what the run continues with.
 */
export async function enrollDevices(
  ep: Endpoints,
  prefix: string,
  n: number,
  concurrency: number,
  deadline = Infinity,
  /** filled as it goes, so that a run that fails part-way still has it */
  progress: Enrollment['progress'] = [],
): Promise<Enrollment> {
  const start = performance.now();
  const devices: EnrolledDevice[] = [];
  // Fine enough to show how provisioning slows as accounts accumulate.
  const step = Math.max(1, Math.floor(n / 50));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n && performance.now() < deadline) {
        devices.push(await enrollOne(ep, `${prefix}-${next++}`));
        if (devices.length % step === 0) progress.push({ enrolled: devices.length, ms: Math.round(performance.now() - start) });
      }
    }),
  );
  return { devices, progress, cutShort: devices.length < n };
}

async function enrollOne(ep: Endpoints, id: string): Promise<EnrolledDevice> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${ep.http}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollmentToken: ep.enrollmentToken, deviceId: id, enrollmentKey: `bench-key-${id}`.padEnd(40, 'k'), labels: { fleet: 'bench' } }),
    });
    const body = (await res.json()) as { credential?: string };
    if (body.credential) return { id, credential: body.credential };
    // A 503 (broker provisioning timed out) is what an agent retries; anything else is a bug.
    if (res.status !== 503 || attempt >= 3) throw new Error(`enrollment of ${id} failed (${res.status}): ${JSON.stringify(body)}`);
  }
}

/** Per publish → ack, in ms; filled by the devices as acks arrive. */
export class AckLedger {
  readonly #sentAt = new Map<string, number>();
  readonly latencies: number[] = [];
  /** when each of `latencies` was acked (same index, the same clock as `at`) */
  readonly ackedAt: number[] = [];
  firstSentAt = Infinity;
  lastAckAt = 0;
  sent = 0;

  sent1(id: string, at: number): void {
    this.#sentAt.set(id, at);
    this.sent++;
    if (at < this.firstSentAt) this.firstSentAt = at;
  }

  acked(id: string, at: number): void {
    const t = this.#sentAt.get(id);
    if (t === undefined) return; // a duplicate ack
    this.#sentAt.delete(id);
    this.latencies.push(at - t);
    this.ackedAt.push(at);
    this.lastAckAt = at;
  }

  get outstanding(): number {
    return this.#sentAt.size;
  }
}

export class SimDevice {
  readonly client: MqttClient;
  #seq = 0;
  /** the newest desired generation seen, and when it arrived */
  desired: { generation: number; version: string | undefined; at: number } | null = null;
  onDesired: (() => void) | null = null;

  constructor(
    readonly id: string,
    client: MqttClient,
    readonly ledger: AckLedger,
  ) {
    this.client = client;
    const ackTopic = deviceTopic(id, 'ack');
    const desiredTopic = deviceTopic(id, 'desired');
    client.on('message', (topic, payload) => {
      const at = performance.now();
      if (topic === ackTopic) {
        const m = decodeMessage('ack', payload);
        if (m.ok) for (const eid of m.message.body.ids) ledger.acked(eid, at);
      } else if (topic === desiredTopic) {
        const m = decodeMessage('desired', payload);
        if (!m.ok) return;
        this.desired = { generation: m.message.body.generation, version: m.message.body.models['digits']?.version, at };
        this.onDesired?.();
      }
    });
  }

  /** One durable telemetry event, as the agent's outbox sends it (QoS 1); its ack is the commit. */
  sendEvent(): void {
    const { message, payload } = encodeMessage('events', { kind: 'bench.telemetry', seq: this.#seq++, data: { cpu: 0.42, memMiB: 512, tempC: 48.5 } });
    this.ledger.sent1(message.id, performance.now());
    this.client.publish(deviceTopic(this.id, 'events'), payload, { qos: 1 });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}

/** Connects like the agent: resolves once subscribed and its retained `online` status is acknowledged. */
export function connectDevice(
  mqttUrl: string,
  d: EnrolledDevice,
  ledger: AckLedger,
  opts: { localAddress?: string; connectTimeoutMs?: number } = {},
): Promise<SimDevice> {
  const { hostname, port } = new URL(mqttUrl);
  const source = opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {};
  // mqtt.js has no TCP_NODELAY option; without it every QoS 1 round trip waits on delayed ACKs.
  const client = new MqttClient(() => createConnection({ host: hostname, port: Number(port), ...source }).setNoDelay(true), {
    clientId: d.id,
    username: d.id,
    password: d.credential,
    clean: false,
    keepalive: 600,
    reconnectPeriod: 0,
    connectTimeout: opts.connectTimeoutMs ?? 120_000,
    will: { topic: deviceTopic(d.id, 'status'), payload: encodeMessage('status', { state: 'offline' }).payload, qos: 1, retain: true },
  });
  const device = new SimDevice(d.id, client, ledger);
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client
        .subscribeAsync([deviceTopic(d.id, 'desired'), deviceTopic(d.id, 'ack'), deviceTopic(d.id, 'cmd')], { qos: 1 })
        .then(() => client.publishAsync(deviceTopic(d.id, 'status'), encodeMessage('status', { state: 'online' }).payload, { qos: 1, retain: true }))
        .then(() => resolve(device), reject);
    });
    client.once('error', reject);
    client.once('close', () => reject(new Error(`${d.id}: connection closed before it was ready`)));
  });
}
