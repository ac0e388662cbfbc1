/**
 * Clients that misbehave for the whole soak, each from its own loopback address: they guess
 * credentials over REST and MQTT, flood the broker with connections, stop reading, publish
 * oversize and garbage messages. Each keeps counts of what it tried and how the server answered.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { MqttClient } from 'mqtt';
import { Agent, request } from 'undici';
import { deviceTopic } from '@flotilla/protocol';
import type { EnrolledDevice } from '../../server/bench/broker/fleet-sim.ts';

export interface Misbehaver {
  name: string;
  /** what it tried, and how it was answered */
  counts: Record<string, number>;
  stop(): Promise<void>;
}

function loop(name: string, counts: Record<string, number>, body: (stopped: () => boolean) => Promise<void>): Misbehaver {
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      try {
        await body(() => stopped);
      } catch {
        counts.errors = (counts.errors ?? 0) + 1;
        await sleep(100);
      }
    }
  })();
  return {
    name,
    counts,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

/** Guesses admin tokens against the REST API; answered 401 until throttled, then 429. */
export function restBruteForcer(http: string, localAddress: string): Misbehaver {
  const counts: Record<string, number> = { attempts: 0, unauthorized: 0, throttled: 0 };
  const dispatcher = new Agent({ localAddress, connections: 1 });
  const m = loop('rest brute force', counts, async () => {
    const res = await request(`${http}/v1/devices`, { dispatcher, headers: { authorization: `Bearer flta_guess-${Math.random().toString(36).slice(2)}-padding` } });
    await res.body.dump();
    bump(counts, 'attempts');
    bump(counts, res.statusCode === 429 ? 'throttled' : res.statusCode === 401 ? 'unauthorized' : `status${res.statusCode}`);
    await sleep(20);
  });
  return { ...m, stop: () => m.stop().then(() => dispatcher.close()) };
}

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}

/** A raw MQTT 3.1.1 CONNECT (username = client id, clean session). */
function connectPacket(clientId: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(clientId), str(password)]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** Guesses a device's MQTT password; answered CONNACK 4 (bad credentials) until throttled, then 5. */
export function mqttBruteForcer(mqttUrl: string, localAddress: string, targetId: string): Misbehaver {
  const { hostname, port } = new URL(mqttUrl);
  const counts: Record<string, number> = { attempts: 0, badCredentials: 0, throttled: 0 };
  return loop('mqtt brute force', counts, async () => {
    const code = await new Promise<number | 'closed'>((resolve) => {
      const socket = netConnect({ host: hostname, port: Number(port), localAddress }, () => socket.write(connectPacket(targetId, `guess-${Math.random()}`)));
      socket.setTimeout(10_000, () => socket.destroy());
      socket.on('error', () => {});
      socket.once('data', (b) => {
        resolve(b[0] === 0x20 ? b[3]! : 'closed');
        socket.destroy();
      });
      socket.once('close', () => resolve('closed'));
    });
    bump(counts, 'attempts');
    bump(counts, code === 5 ? 'throttled' : code === 4 ? 'badCredentials' : `answer-${code}`);
    await sleep(50);
  });
}

/** Opens bursts of connections that never send CONNECT; the broker closes those past its per-address limits. */
export function connectFlooder(mqttUrl: string, localAddress: string, burst = 40): Misbehaver {
  const { hostname, port } = new URL(mqttUrl);
  const counts: Record<string, number> = { opened: 0, shed: 0 };
  return loop('connect flood', counts, async (stopped) => {
    const sockets: Socket[] = [];
    for (let i = 0; i < burst; i++) {
      const s = netConnect({ host: hostname, port: Number(port), localAddress });
      s.on('error', () => {});
      s.once('close', () => sockets.includes(s) && bump(counts, 'shed'));
      sockets.push(s);
      bump(counts, 'opened');
    }
    await sleep(stopped() ? 0 : 500);
    // Forget them before destroying, so our own close is not counted as the server's.
    const mine = sockets.splice(0);
    for (const s of mine) s.destroy();
  });
}

function mqttDevice(mqttUrl: string, d: EnrolledDevice, localAddress: string): MqttClient {
  const { hostname, port } = new URL(mqttUrl);
  const client = new MqttClient(() => netConnect({ host: hostname, port: Number(port), localAddress }), {
    clientId: d.id,
    username: d.id,
    password: d.credential,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
  client.on('error', () => {});
  return client;
}

function untilClosed(client: MqttClient, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = setInterval(() => stopped() && client.end(true), 200);
    client.once('close', () => {
      clearInterval(check);
      resolve();
    });
  });
}

function connected(client: MqttClient): Promise<boolean> {
  return new Promise((resolve) => {
    client.once('connect', () => resolve(true));
    client.once('close', () => resolve(false));
  });
}

/**
 * Subscribes to its own desired state and stops reading its socket; the runner sends it large
 * desired documents. The server drops it once its outgoing buffer passes the limit; it comes back.
 */
export function slowSubscriber(mqttUrl: string, localAddress: string, d: EnrolledDevice): Misbehaver {
  const counts: Record<string, number> = { connects: 0, dropped: 0 };
  return loop('slow subscriber', counts, async (stopped) => {
    const client = mqttDevice(mqttUrl, d, localAddress);
    if (!(await connected(client))) return void (await sleep(500));
    bump(counts, 'connects');
    await client.subscribeAsync(deviceTopic(d.id, 'desired'), { qos: 1 });
    const stream = client.stream as unknown as { pause(): void; resume(): void };
    const gone = untilClosed(client, stopped);
    let dropped = false;
    void gone.then(() => (dropped = true));
    // A paused socket does not even notice it was closed: look up now and then.
    while (!dropped && !stopped()) {
      stream.pause();
      await sleep(8_000);
      stream.resume();
      await sleep(300);
    }
    await gone;
    if (!stopped()) bump(counts, 'dropped');
    await sleep(1_000);
  });
}

/** Publishes an event past the payload limit; the server closes the connection. It comes back. */
export function oversizePublisher(mqttUrl: string, localAddress: string, d: EnrolledDevice): Misbehaver {
  const counts: Record<string, number> = { sent: 0, closed: 0 };
  const big = Buffer.alloc(300 * 1024, 0x7b);
  return loop('oversize publisher', counts, async (stopped) => {
    const client = mqttDevice(mqttUrl, d, localAddress);
    if (!(await connected(client))) return void (await sleep(500));
    client.publish(deviceTopic(d.id, 'events'), big, { qos: 1 });
    bump(counts, 'sent');
    await untilClosed(client, stopped);
    if (!stopped()) bump(counts, 'closed');
    await sleep(1_000);
  });
}

/** Publishes malformed events; the server rejects each (flotilla_device_messages_rejected_total). */
export function garbagePublisher(mqttUrl: string, localAddress: string, d: EnrolledDevice): Misbehaver {
  const counts: Record<string, number> = { sent: 0, connects: 0 };
  return loop('garbage publisher', counts, async (stopped) => {
    const client = mqttDevice(mqttUrl, d, localAddress);
    if (!(await connected(client))) return void (await sleep(500));
    bump(counts, 'connects');
    while (!stopped() && client.connected) {
      const junk = Math.random() < 0.5 ? Buffer.from('{"v":1,"id":') : Buffer.from(JSON.stringify({ v: 1, kind: 'nonsense', n: Math.random() }));
      await client.publishAsync(deviceTopic(d.id, 'events'), junk, { qos: 1 }).catch(() => {});
      bump(counts, 'sent');
      await sleep(100);
    }
    client.end(true);
  });
}
