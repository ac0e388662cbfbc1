/**
 * A healthy simulated device for the soak: the broker bench's SimDevice (durable events acked by
 * the server, desired state watched), connected from a chosen loopback source address so that the
 * server's per-address guards see a fleet spread over many addresses, as in the field.
 */
import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';
import { deviceTopic, encodeMessage } from '@flotilla/protocol';
import { SimDevice } from '../../server/bench/broker/fleet-sim.ts';
import type { AckLedger, EnrolledDevice } from '../../server/bench/broker/fleet-sim.ts';

export function connectFrom(mqttUrl: string, d: EnrolledDevice, ledger: AckLedger, localAddress: string): Promise<SimDevice> {
  const { hostname, port } = new URL(mqttUrl);
  const client = new MqttClient(() => createConnection({ host: hostname, port: Number(port), localAddress }).setNoDelay(true), {
    clientId: d.id,
    username: d.id,
    password: d.credential,
    clean: false,
    keepalive: 600,
    reconnectPeriod: 0,
    connectTimeout: 60_000,
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

/** Healthy devices share source addresses four to one, starting at 127.0.10.1. */
export function healthyAddress(index: number): string {
  const n = Math.floor(index / 4);
  return `127.0.${10 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}
