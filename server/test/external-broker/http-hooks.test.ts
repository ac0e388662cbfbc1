/**
 * The HTTP hooks EMQX and VerneMQ call, in the request and response shapes those brokers use,
 * driven through the server's own HTTP app. The decisions are the embedded broker's policy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildServer } from '../../src/index.ts';
import type { ServerConfigInput } from '../../src/config/schema.ts';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, enrollBody } from '../helpers/server.ts';

const HOOK_TOKEN = 'hook-token-0123456789abcdefghij';
const SERVER = { username: 'flotilla-server', password: 'server-password-0123456789' };

const HOOKS_MODE: ServerConfigInput['broker'] = { mode: 'external', url: 'mqtt://127.0.0.1:1', ...SERVER, provisioner: 'http-hooks', hookToken: HOOK_TOKEN };
type Cleanup = (fn: () => Promise<void> | void) => void;

/** A server in http-hooks mode, built but not listening (so it never dials the broker). */
async function hooksServer(broker: ServerConfigInput['broker'] = HOOKS_MODE, cleanup: Cleanup = onTestFinished) {
  const dataDir = mkdtempSync(join(tmpdir(), 'flt-hooks-'));
  cleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = await buildServer(
    { dataDir, logLevel: 'silent', adminToken: ADMIN_TOKEN, enrollmentToken: ENROLL_TOKEN, autoAccept: true, broker },
    { logger: pino({ level: 'silent' }) },
  );
  cleanup(() => server.close());
  const enroll = async (deviceId: string) => (await server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody(deviceId) })).json().credential as string;
  const hook = async (path: string, payload: object, headers: Record<string, string> = {}) => {
    const res = await server.http.inject({ method: 'POST', url: `/v1/broker-hooks/${path}`, headers: { authorization: `Bearer ${HOOK_TOKEN}`, ...headers }, payload });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  return { server, enroll, hook };
}

// One server for the hook tables: building one costs more than all the requests together.
let shared: Awaited<ReturnType<typeof hooksServer>>;
let credentialA: string;
const teardown: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  shared = await hooksServer(HOOKS_MODE, (fn) => teardown.unshift(fn));
  credentialA = await shared.enroll('dev-a');
});
afterAll(async () => {
  for (const fn of teardown) await fn();
});

describe('EMQX HTTP authentication and authorization hooks', () => {
  it('allows a device with its current credential, denies a wrong one with an explicit deny, and makes only the server a superuser', async () => {
    const { hook } = shared;
    const credential = credentialA;
    expect(await hook('emqx/authn', { clientid: 'dev-a', username: 'dev-a', password: credential })).toEqual({ status: 200, body: { result: 'allow', is_superuser: false } });
    expect(await hook('emqx/authn', { clientid: 'dev-a', username: 'dev-a', password: 'guess' })).toEqual({ status: 200, body: { result: 'deny', is_superuser: false } });
    expect(await hook('emqx/authn', { clientid: 'dev-b', username: 'dev-a', password: credential })).toMatchObject({ body: { result: 'deny' } });
    expect(await hook('emqx/authn', { clientid: 'flotilla-server:1', ...SERVER })).toEqual({ status: 200, body: { result: 'allow', is_superuser: true } });
    expect(await hook('emqx/authn', { clientid: 'dev-a', username: SERVER.username, password: 'guess' })).toMatchObject({ body: { result: 'deny' } });
  });

  it.each([
    ['publish', 'flt/v1/d/dev-a/heartbeat', 'false', 'allow'],
    ['publish', 'flt/v1/d/dev-a/status', 'true', 'allow'],
    ['publish', 'flt/v1/d/dev-a/heartbeat', 'true', 'deny'],
    ['publish', 'flt/v1/d/dev-b/status', 'false', 'deny'],
    ['publish', 'flt/v1/d/dev-a/desired', 'false', 'deny'],
    ['publish', '$SYS/x', 'false', 'deny'],
    ['subscribe', 'flt/v1/d/dev-a/#', 'false', 'allow'],
    ['subscribe', 'flt/v1/d/+/desired', 'false', 'deny'],
    ['subscribe', '#', 'false', 'deny'],
    ['all', 'flt/v1/d/dev-a/heartbeat', 'false', 'deny'],
  ])('answers %s on %j (retain %s) with %s', async (action, topic, retain, result) => {
    const { hook } = shared;
    expect(await hook('emqx/authz', { clientid: 'dev-a', username: 'dev-a', action, topic, qos: '1', retain })).toEqual({ status: 200, body: { result } });
  });

  it('denies every packet of a device once it is revoked, while its session may still be open', async () => {
    const { server, enroll, hook } = shared;
    await enroll('dev-r');
    const heartbeat = { clientid: 'dev-r', username: 'dev-r', action: 'publish', topic: 'flt/v1/d/dev-r/heartbeat', retain: 'false' };
    expect(await hook('emqx/authz', heartbeat)).toMatchObject({ body: { result: 'allow' } });
    await server.http.inject({ method: 'POST', url: '/v1/devices/dev-r/revoke', headers: auth(ADMIN_TOKEN) });
    expect(await hook('emqx/authz', heartbeat)).toMatchObject({ body: { result: 'deny' } });
  });

  it('refuses callers without the hook token', async () => {
    const { hook } = shared;
    expect((await hook('emqx/authn', { clientid: 'dev-a', username: 'dev-a', password: 'x' }, { authorization: 'Bearer wrong' })).status).toBe(401);
  });
});

describe('VerneMQ webhooks', () => {
  it('grants auth_on_register with the payload limit as a modifier, and refuses a bad credential', async () => {
    const { hook } = shared;
    const credential = credentialA;
    const base = { peer_addr: '127.0.0.1', peer_port: 5000, mountpoint: '', client_id: 'dev-a', username: 'dev-a', clean_session: false };
    const ok = await hook('vernemq', { ...base, password: credential }, { 'vernemq-hook': 'auth_on_register' });
    expect(ok.body).toMatchObject({ result: 'ok', modifiers: { max_message_size: expect.any(Number) } });
    expect((await hook('vernemq', { ...base, password: 'guess' }, { 'vernemq-hook': 'auth_on_register' })).body).toEqual({ result: { error: 'not_allowed' } });
    expect((await hook('vernemq', { ...base, mountpoint: 'tenant-1', password: credential }, { 'vernemq-hook': 'auth_on_register' })).body).toEqual({ result: { error: 'not_allowed' } });
  });

  it('answers auth_on_subscribe per filter, refusing foreign filters with qos 128 (135 for MQTT 5)', async () => {
    const { hook } = shared;
    const topics = [
      { topic: 'flt/v1/d/dev-a/desired', qos: 1 },
      { topic: 'flt/v1/d/+/desired', qos: 1 },
    ];
    const who = { client_id: 'dev-a', username: 'dev-a', mountpoint: '' };
    expect((await hook('vernemq', { ...who, topics }, { 'vernemq-hook': 'auth_on_subscribe' })).body).toEqual({
      result: 'ok',
      topics: [
        { topic: 'flt/v1/d/dev-a/desired', qos: 1 },
        { topic: 'flt/v1/d/+/desired', qos: 128 },
      ],
    });
    expect((await hook('vernemq', { ...who, topics, properties: {} }, { 'vernemq-hook': 'auth_on_subscribe_m5' })).body).toMatchObject({
      modifiers: { topics: [{ qos: 1 }, { qos: 135 }] },
    });
  });

  it('answers auth_on_publish with ok on the device own up channel and not_allowed elsewhere', async () => {
    const { hook } = shared;
    const pub = { client_id: 'dev-a', username: 'dev-a', mountpoint: '', qos: 1, payload: 'e30=', retain: false };
    expect((await hook('vernemq', { ...pub, topic: 'flt/v1/d/dev-a/events' }, { 'vernemq-hook': 'auth_on_publish' })).body).toEqual({ result: 'ok' });
    expect((await hook('vernemq', { ...pub, topic: 'flt/v1/d/dev-b/events' }, { 'vernemq-hook': 'auth_on_publish' })).body).toEqual({ result: { error: 'not_allowed' } });
    expect((await hook('vernemq', { ...pub, topic: 'flt/v1/d/dev-a/events' }, { 'vernemq-hook': 'on_deliver' })).status).toBe(400);
  });
});

describe('broker mode configuration', () => {
  it('defaults to the embedded broker and serves no broker hooks', async () => {
    const { server } = await hooksServer({ mode: 'embedded' });
    expect(server.config.broker).toEqual({ mode: 'embedded' });
    const res = await server.http.inject({ method: 'POST', url: '/v1/broker-hooks/emqx/authn', headers: { authorization: `Bearer ${HOOK_TOKEN}` }, payload: {} });
    expect(res.statusCode).toBe(404);
  });

  it('refuses http-hooks without a hook token, and external mode without the broker url or account', async () => {
    await expect(hooksServer({ mode: 'external', url: 'mqtt://127.0.0.1:1', ...SERVER, provisioner: 'http-hooks' })).rejects.toMatchObject({ code: 'FLT_CONFIG_INVALID' });
    await expect(hooksServer({ mode: 'external', url: 'http://127.0.0.1:1', ...SERVER })).rejects.toMatchObject({ code: 'FLT_CONFIG_INVALID' });
    await expect(hooksServer({ mode: 'external', url: 'mqtt://127.0.0.1:1' } as never)).rejects.toMatchObject({ code: 'FLT_CONFIG_INVALID' });
  });
});
