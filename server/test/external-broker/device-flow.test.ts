/**
 * The whole device flow with the server in external broker mode over a real mosquitto with
 * dynamic security: enroll, accept, connect to mosquitto with the issued credential, presence,
 * desired state delivered, revocation kicks and the credential stops working.
 */
import { decodeMessage, deviceTopic } from '@flotilla/protocol';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { closedByBroker, publishOutcome } from '../broker/harness.ts';
import { ADMIN_TOKEN, auth, enrollBody, startServer } from '../helpers/server.ts';
import { statusPayload } from './harness.ts';
import { ADMIN_PASSWORD, ADMIN_USER, startMosquitto } from './mosquitto.ts';

async function externalServer() {
  const mosquitto = await startMosquitto();
  const t = await startServer({ broker: { mode: 'external', url: mosquitto.url, username: ADMIN_USER, password: ADMIN_PASSWORD } });
  onTestFinished(() => t.close());
  const inject = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) =>
    t.server.http.inject({ method, url, ...(url === '/v1/enroll' ? {} : { headers: auth(ADMIN_TOKEN) }), ...(payload ? { payload } : {}) });
  return { mosquitto, t, inject };
}

function connectDevice(url: string, deviceId: string, password: string): Promise<{ code: number; client: MqttClient }> {
  return new Promise((resolve, reject) => {
    const client = connect(url, {
      clientId: deviceId,
      username: deviceId,
      password,
      reconnectPeriod: 0,
      will: { topic: deviceTopic(deviceId, 'status'), payload: statusPayload('offline'), qos: 1, retain: true },
    });
    onTestFinished(() => new Promise<void>((done) => client.end(true, {}, () => done())));
    client.on('error', () => {});
    client.once('connect', () => resolve({ code: 0, client }));
    client.once('error', (err) => {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') resolve({ code, client });
      else reject(err);
    });
  });
}

describe('external broker mode over mosquitto with dynamic security', () => {
  it('enrolls, accepts, connects, delivers desired state, and cuts the device off when it is revoked', async () => {
    const { mosquitto, t, inject } = await externalServer();

    const pending = await inject('POST', '/v1/enroll', enrollBody('jetson-1'));
    expect(pending.statusCode).toBe(202);
    expect((await inject('POST', '/v1/devices/jetson-1/accept')).statusCode).toBe(200);
    const accepted = await inject('POST', '/v1/enroll', enrollBody('jetson-1'));
    expect(accepted.statusCode).toBe(200);
    const { credential, mqtt } = accepted.json() as { credential: string; mqtt: { tcp: string } };
    // Devices are sent to the external broker, not to a port of the server.
    expect(mqtt.tcp).toBe(mosquitto.url);

    const { code, client } = await connectDevice(mqtt.tcp, 'jetson-1', credential);
    expect(code).toBe(0);
    const desiredSeen = new Promise<Buffer>((resolve) => client.on('message', (topic, payload) => topic.endsWith('/desired') && payload.length > 0 && resolve(payload)));
    await client.subscribeAsync(deviceTopic('jetson-1', 'desired'), { qos: 1 });
    expect(await publishOutcome(client, deviceTopic('jetson-1', 'status'), statusPayload('online'), true)).toBe('acked');
    await vi.waitFor(async () => expect((await inject('GET', '/v1/devices/jetson-1')).json()).toMatchObject({ online: true }));

    const put = await inject('PUT', '/v1/devices/jetson-1/desired', { models: { digits: { version: '1.0.0' } } });
    expect(put.statusCode).toBe(200);
    const desired = decodeMessage('desired', await desiredSeen);
    expect(desired.ok && desired.message.body).toEqual({ generation: 1, models: { digits: { version: '1.0.0' } } });

    expect((await inject('POST', '/v1/devices/jetson-1/revoke')).statusCode).toBe(200);
    await closedByBroker(client);
    await vi.waitFor(async () => expect((await inject('GET', '/v1/devices/jetson-1')).json()).toMatchObject({ online: false }));
    const again = await connectDevice(mqtt.tcp, 'jetson-1', credential);
    expect(again.code).toBe(5);
      expect(t.server.broker.isConnected('jetson-1')).toBe(false);
  });

  it('disconnects the session of a replaced credential when the device enrolls again', async () => {
    const { t, inject } = await externalServer();
    await inject('POST', '/v1/enroll', enrollBody('jetson-2'));
    await inject('POST', '/v1/devices/jetson-2/accept');
    const first = (await inject('POST', '/v1/enroll', enrollBody('jetson-2'))).json() as { credential: string; mqtt: { tcp: string } };
    const { code, client: old } = await connectDevice(first.mqtt.tcp, 'jetson-2', first.credential);
    expect(code).toBe(0);
    const oldClosed = new Promise<void>((resolve) => old.once('close', () => resolve()));

    const secondRes = await inject('POST', '/v1/enroll', enrollBody('jetson-2'));
    expect(secondRes.statusCode).toBe(200);
    const second = secondRes.json() as { credential: string };
    // Already closed by the time the device hears its new credential.
    await oldClosed;
    expect((await connectDevice(first.mqtt.tcp, 'jetson-2', first.credential)).code).toBe(5);
    expect((await connectDevice(first.mqtt.tcp, 'jetson-2', second.credential)).code).toBe(0);
    expect(t.server.config.broker.mode).toBe('external');
  });
});
