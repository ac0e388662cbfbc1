/**
 * The device policy's pure decisions at their edges: the exact limits and the near misses an
 * attacker would try. The *-policy tests run the same rules through a real broker and sockets.
 */
import { describe, expect, it } from 'vitest';
import { CONNACK, checkConnect, checkPublish, checkSubscribe, mayForward, type ConnectRequest } from '../../src/broker/device-policy.ts';

const connect = (over: Partial<ConnectRequest> = {}): ConnectRequest => ({
  clientId: 'dev-a',
  username: 'dev-a',
  password: Buffer.from('secret'),
  will: null,
  clientIdInUse: false,
  ...over,
});

describe('device connect policy', () => {
  it('lets a well-formed connect go on to authentication, with or without a status will', () => {
    expect(checkConnect(connect(), 10)).toBeNull();
    expect(checkConnect(connect({ will: { topic: 'flt/v1/d/dev-a/status', payload: 'x'.repeat(10) } }), 10)).toBeNull();
  });

  it('refuses a will one byte over the limit, counting bytes rather than characters', () => {
    expect(checkConnect(connect({ will: { topic: 'flt/v1/d/dev-a/status', payload: 'x'.repeat(11) } }), 10)).toEqual({
      code: 'FLT_MSG_TOO_LARGE',
      returnCode: CONNACK.notAuthorized,
      detail: 'will payload of 11 bytes',
    });
    expect(checkConnect(connect({ will: { topic: 'flt/v1/d/dev-a/status', payload: 'é'.repeat(6) } }), 10)).toMatchObject({ code: 'FLT_MSG_TOO_LARGE' });
  });

  it('refuses a will aimed anywhere but the device own status topic', () => {
    expect(checkConnect(connect({ will: { topic: 'flt/v1/d/dev-b/status', payload: '' } }), 10)).toEqual({
      code: 'FLT_MQTT_WILL_FORBIDDEN',
      returnCode: CONNACK.notAuthorized,
      detail: 'will topic "flt/v1/d/dev-b/status"',
    });
  });

  it('tells an anonymous connect, an empty password and a missing one apart by return code', () => {
    expect(checkConnect(connect({ username: undefined }), 10)).toEqual({ code: 'FLT_MQTT_AUTH_FAILED', returnCode: 5, detail: 'anonymous connect' });
    expect(checkConnect(connect({ username: '' }), 10)).toEqual({ code: 'FLT_MQTT_AUTH_FAILED', returnCode: 5, detail: 'anonymous connect' });
    expect(checkConnect(connect({ password: undefined }), 10)).toEqual({ code: 'FLT_MQTT_AUTH_FAILED', returnCode: 4, detail: 'no password' });
    expect(checkConnect(connect({ password: Buffer.alloc(0) }), 10)).toEqual({ code: 'FLT_MQTT_AUTH_FAILED', returnCode: 4, detail: 'no password' });
  });

  it('calls a borrowed client id a takeover only while its owner is connected', () => {
    expect(checkConnect(connect({ clientId: 'dev-b', clientIdInUse: true }), 10)).toEqual({
      code: 'FLT_MQTT_CLIENT_ID_TAKEN',
      returnCode: CONNACK.identifierRejected,
      detail: 'client id dev-b differs from username "dev-a"',
    });
    expect(checkConnect(connect({ clientId: 'dev-b' }), 10)).toMatchObject({ code: 'FLT_MQTT_CLIENT_ID_INVALID', returnCode: 2 });
  });

  it('refuses a client id that is not a device id before looking at the credential', () => {
    expect(checkConnect(connect({ clientId: 'dev+a', username: undefined }), 10)).toEqual({
      code: 'FLT_MQTT_CLIENT_ID_INVALID',
      returnCode: 2,
      detail: 'client id "dev+a" is not a device id',
    });
  });

  it('keeps the CONNACK return codes of MQTT 3.1.1', () => {
    expect(CONNACK).toEqual({ identifierRejected: 2, serverUnavailable: 3, badCredentials: 4, notAuthorized: 5 });
  });
});

describe('device publish policy', () => {
  it('accepts a payload of exactly the limit on an own up channel and names the channel', () => {
    expect(checkPublish('dev-a', 'flt/v1/d/dev-a/events', false, 10, 10)).toEqual({ ok: true, channel: 'events' });
    expect(checkPublish('dev-a', 'flt/v1/d/dev-a/status', true, 0, 10)).toEqual({ ok: true, channel: 'status' });
  });

  it.each([
    ['another device', 'flt/v1/d/dev-b/events', false, 1, 'FLT_MQTT_TOPIC_FORBIDDEN', 'publish to "flt/v1/d/dev-b/events"'],
    ['its own down channel', 'flt/v1/d/dev-a/cmd', false, 1, 'FLT_MQTT_TOPIC_FORBIDDEN', 'publish to "flt/v1/d/dev-a/cmd"'],
    ['a topic outside the scheme', 'flt/v1/d/dev-a', false, 1, 'FLT_MQTT_TOPIC_FORBIDDEN', 'publish to "flt/v1/d/dev-a"'],
    ['a retained heartbeat', 'flt/v1/d/dev-a/heartbeat', true, 1, 'FLT_MQTT_TOPIC_FORBIDDEN', 'retained publish to flt/v1/d/dev-a/heartbeat'],
    ['one byte over the limit', 'flt/v1/d/dev-a/events', false, 11, 'FLT_MSG_TOO_LARGE', '11 bytes to flt/v1/d/dev-a/events'],
  ])('refuses %s', (_what, topic, retain, bytes, code, detail) => {
    expect(checkPublish('dev-a', topic, retain, bytes, 10)).toEqual({ ok: false, code, detail });
  });
});

describe('device subscribe and forward policy', () => {
  it('allows filters inside the device prefix and names the filter it refuses', () => {
    expect(checkSubscribe('dev-a', 'flt/v1/d/dev-a/+')).toBeNull();
    expect(checkSubscribe('dev-a', 'flt/v1/d/+/desired')).toEqual({ code: 'FLT_MQTT_TOPIC_FORBIDDEN', detail: 'subscribe to "flt/v1/d/+/desired"' });
  });

  it('forwards only topics with at least one level below the device prefix', () => {
    expect(mayForward('dev-a', 'flt/v1/d/dev-a/x')).toBe(true);
    expect(mayForward('dev-a', 'flt/v1/d/dev-a/')).toBe(false);
    expect(mayForward('dev-a', 'flt/v1/d/dev-a')).toBe(false);
    expect(mayForward('dev-a', 'flt/v1/d/dev-ab')).toBe(false);
    expect(mayForward('dev-a', 'flt/v1/d/dev-a-x')).toBe(false);
    expect(mayForward('dev-a', 'xlt/v1/d/dev-a/desired')).toBe(false);
  });
});
