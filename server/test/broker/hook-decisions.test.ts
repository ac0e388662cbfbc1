/**
 * The answers an external broker's HTTP hooks get (EMQX, VerneMQ), driven from the attacker's side
 * on the broker-neutral HookPolicy: every refusal says why and is reported as a violation.
 * server/test/external-broker/http-hooks.test.ts covers the same answers through the HTTP routes.
 */
import type { ErrorCode } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { HookPolicy, type HookPolicyOptions } from '../../src/broker/external/hook-decisions.ts';

const SERVER = { username: 'flotilla-server', password: 'server-password-0123456789' };
const CREDENTIALS: Record<string, string> = { 'dev-a': 'secret-a', 'dev-b': 'secret-b' };

function policy(overrides: Partial<HookPolicyOptions> = {}) {
  const violations: Array<{ deviceId: string | null; code: ErrorCode; detail: string }> = [];
  const seen: Array<[string, string]> = [];
  const active = new Set(['dev-a', 'dev-b']);
  const hooks = new HookPolicy({
    auth: {
      authenticate: (deviceId, secret) => {
        seen.push([deviceId, secret.toString('utf8')]);
        return CREDENTIALS[deviceId] === secret.toString('utf8');
      },
    },
    isActive: (id) => active.has(id),
    server: SERVER,
    maxPayloadBytes: 100,
    onViolation: (deviceId, code, detail) => violations.push({ deviceId, code, detail }),
    ...overrides,
  });
  return { hooks, violations, seen, active };
}

const devA = { clientId: 'dev-a', username: 'dev-a' };

describe('external broker hook decisions: connect', () => {
  it('make the server account, with its password, the only superuser', async () => {
    const { hooks, violations } = policy();
    expect(await hooks.connect({ clientId: 'anything', username: SERVER.username }, SERVER.password)).toEqual({ allow: true, superuser: true });
    expect(await hooks.connect(devA, 'secret-a')).toEqual({ allow: true, superuser: false });
    expect(violations).toEqual([]);
  });

  it.each([
    ['a guessed password', 'guess'],
    ['the password with one character more', `${SERVER.password}x`],
    ['a prefix of the password', SERVER.password.slice(0, -1)],
    ['an empty password', ''],
    ['no password', undefined],
  ])('refuse the server account with %s and report it without a device', async (_what, password) => {
    const { hooks, violations, seen } = policy();
    expect(await hooks.connect({ clientId: 'dev-a', username: SERVER.username }, password)).toEqual({
      allow: false,
      code: 'FLT_MQTT_AUTH_FAILED',
      detail: 'bad credential for the server account',
    });
    expect(violations).toEqual([{ deviceId: null, code: 'FLT_MQTT_AUTH_FAILED', detail: 'bad credential for the server account' }]);
    // The server account is never looked up as a device.
    expect(seen).toEqual([]);
  });

  it('refuse a device presenting another device credential under its own client id', async () => {
    const { hooks, violations } = policy();
    expect(await hooks.connect({ clientId: 'dev-b', username: 'dev-a' }, 'secret-a')).toMatchObject({ allow: false, code: 'FLT_MQTT_CLIENT_ID_INVALID' });
    expect(violations).toMatchObject([{ deviceId: 'dev-b', code: 'FLT_MQTT_CLIENT_ID_INVALID' }]);
  });

  it('refuse an anonymous or password-less connect before asking the authenticator', async () => {
    const { hooks, seen } = policy();
    expect(await hooks.connect({ clientId: 'dev-a', username: undefined }, 'secret-a')).toMatchObject({ allow: false, code: 'FLT_MQTT_AUTH_FAILED' });
    expect(await hooks.connect(devA, undefined)).toMatchObject({ allow: false, code: 'FLT_MQTT_AUTH_FAILED' });
    expect(seen).toEqual([]);
  });

  it('pass the device password to the authenticator as UTF-8 bytes and refuse a wrong one as a violation', async () => {
    const { hooks, violations, seen } = policy();
    expect(await hooks.connect(devA, 'secret-b')).toEqual({ allow: false, code: 'FLT_MQTT_AUTH_FAILED', detail: 'unknown device or bad credential' });
    expect(seen).toEqual([['dev-a', 'secret-b']]);
    expect(violations).toEqual([{ deviceId: 'dev-a', code: 'FLT_MQTT_AUTH_FAILED', detail: 'unknown device or bad credential' }]);
  });

  it('refuse, without blaming the device, when the authenticator fails', async () => {
    const { hooks, violations } = policy({
      auth: {
        authenticate: () => {
          throw new Error('database is locked');
        },
      },
    });
    expect(await hooks.connect(devA, 'secret-a')).toEqual({ allow: false, code: 'FLT_MQTT_AUTH_FAILED', detail: 'authentication unavailable' });
    expect(violations).toEqual([]);
  });
});

describe('external broker hook decisions: publish and subscribe', () => {
  it('let the server account publish and subscribe anywhere as superuser', () => {
    const { hooks } = policy();
    const server = { clientId: 'flotilla-server-1', username: SERVER.username };
    expect(hooks.publish(server, 'flt/v1/d/dev-a/desired', true, 10_000)).toEqual({ allow: true, superuser: true });
    expect(hooks.subscribe(server, 'flt/v1/d/+/status')).toEqual({ allow: true, superuser: true });
  });

  it('let an active device publish on its own up channel and subscribe inside its prefix, as a plain client', () => {
    const { hooks, violations } = policy();
    expect(hooks.publish(devA, 'flt/v1/d/dev-a/events', false, 100)).toEqual({ allow: true, superuser: false });
    expect(hooks.publish(devA, 'flt/v1/d/dev-a/status', true)).toEqual({ allow: true, superuser: false });
    expect(hooks.subscribe(devA, 'flt/v1/d/dev-a/#')).toEqual({ allow: true, superuser: false });
    expect(violations).toEqual([]);
  });

  it.each([
    ['another device topic', 'flt/v1/d/dev-b/events', false, 1, 'FLT_MQTT_TOPIC_FORBIDDEN'],
    ['its own down channel', 'flt/v1/d/dev-a/desired', false, 1, 'FLT_MQTT_TOPIC_FORBIDDEN'],
    ['a retained event', 'flt/v1/d/dev-a/events', true, 1, 'FLT_MQTT_TOPIC_FORBIDDEN'],
    ['a payload over the limit', 'flt/v1/d/dev-a/events', false, 101, 'FLT_MSG_TOO_LARGE'],
  ] as const)('refuse a device publishing %s and report it', (_what, topic, retain, bytes, code) => {
    const { hooks, violations } = policy();
    expect(hooks.publish(devA, topic, retain, bytes)).toMatchObject({ allow: false, code });
    expect(violations).toMatchObject([{ deviceId: 'dev-a', code }]);
  });

  it.each(['flt/v1/d/+/desired', 'flt/v1/d/dev-b/#', '#', '$SYS/#'])('refuse a device subscribing to %j and report it', (filter) => {
    const { hooks, violations } = policy();
    expect(hooks.subscribe(devA, filter)).toMatchObject({ allow: false, code: 'FLT_MQTT_TOPIC_FORBIDDEN' });
    expect(violations).toMatchObject([{ deviceId: 'dev-a', code: 'FLT_MQTT_TOPIC_FORBIDDEN' }]);
  });

  it('refuse every packet from a session whose client id differs from its username', () => {
    const { hooks, violations } = policy();
    const impostor = { clientId: 'dev-b', username: 'dev-a' };
    const refusal = { allow: false, code: 'FLT_MQTT_CLIENT_ID_INVALID', detail: 'client id differs from username' };
    expect(hooks.publish(impostor, 'flt/v1/d/dev-b/events', false, 1)).toEqual(refusal);
    expect(hooks.subscribe(impostor, 'flt/v1/d/dev-b/#')).toEqual(refusal);
    expect(violations).toHaveLength(2);
  });

  it('refuse every packet from a device revoked after it connected', () => {
    const { hooks, active, violations } = policy();
    active.delete('dev-a');
    const refusal = { allow: false, code: 'FLT_MQTT_AUTH_FAILED', detail: 'device is no longer active' };
    expect(hooks.publish(devA, 'flt/v1/d/dev-a/events', false, 1)).toEqual(refusal);
    expect(hooks.subscribe(devA, 'flt/v1/d/dev-a/#')).toEqual(refusal);
    const reported = { deviceId: 'dev-a', code: 'FLT_MQTT_AUTH_FAILED', detail: 'device is no longer active' };
    expect(violations).toEqual([reported, reported]);
  });

  it('work without a violation listener', () => {
    const { hooks } = policy({ onViolation: undefined });
    expect(hooks.publish(devA, 'flt/v1/d/dev-b/events', false, 1)).toMatchObject({ allow: false });
  });
});
