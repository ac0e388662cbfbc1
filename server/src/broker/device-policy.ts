/**
 * Flotilla's device policy as pure functions: who may connect, and which topics a device may
 * publish to, subscribe to and receive. The aedes hooks in hooks.ts only adapt these to aedes.
 */
import { deviceTopic, devicePrefix, filterWithinDevice, isValidDeviceId, parseDeviceTopic } from '@flotilla/protocol';
import type { ErrorCode, UpChannel } from '@flotilla/protocol';

export interface Refusal {
  code: ErrorCode;
  detail: string;
}

/** MQTT 3.1.1 CONNACK return codes the policy uses. */
export const CONNACK = {
  identifierRejected: 2,
  serverUnavailable: 3,
  badCredentials: 4,
  notAuthorized: 5,
} as const;
export type ConnackRefusalCode = (typeof CONNACK)[keyof typeof CONNACK];

export interface ConnectRefusal extends Refusal {
  returnCode: ConnackRefusalCode;
}

export interface ConnectRequest {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  will: { topic: string; payload: Buffer | string } | null | undefined;
  /** true when another live session holds this client id (only changes which code is reported) */
  clientIdInUse: boolean;
}

/** Checks everything about a CONNECT that needs no credential lookup; null means "go on and authenticate". */
export function checkConnect(req: ConnectRequest, maxPayloadBytes: number): ConnectRefusal | null {
  const { clientId, username, password, will } = req;
  if (!isValidDeviceId(clientId)) {
    return refuseConnect('FLT_MQTT_CLIENT_ID_INVALID', CONNACK.identifierRejected, `client id ${JSON.stringify(clientId)} is not a device id`);
  }
  if (username === undefined || username === '') {
    return refuseConnect('FLT_MQTT_AUTH_FAILED', CONNACK.notAuthorized, 'anonymous connect');
  }
  if (password === undefined || password.length === 0) {
    return refuseConnect('FLT_MQTT_AUTH_FAILED', CONNACK.badCredentials, 'no password');
  }
  if (username !== clientId) {
    // A device presenting its own credential under someone else's client id is a takeover attempt.
    const code = req.clientIdInUse ? 'FLT_MQTT_CLIENT_ID_TAKEN' : 'FLT_MQTT_CLIENT_ID_INVALID';
    return refuseConnect(code, CONNACK.identifierRejected, `client id ${clientId} differs from username ${JSON.stringify(username)}`);
  }
  if (will) {
    if (will.topic !== deviceTopic(clientId, 'status')) {
      return refuseConnect('FLT_MQTT_WILL_FORBIDDEN', CONNACK.notAuthorized, `will topic ${JSON.stringify(will.topic)}`);
    }
    if (Buffer.byteLength(will.payload) > maxPayloadBytes) {
      return refuseConnect('FLT_MSG_TOO_LARGE', CONNACK.notAuthorized, `will payload of ${Buffer.byteLength(will.payload)} bytes`);
    }
  }
  return null;
}

export type PublishDecision = { ok: true; channel: UpChannel } | ({ ok: false } & Refusal);

/** A device may publish only on its own up channels, retain only its status, within the size limit. */
export function checkPublish(
  deviceId: string,
  topic: string,
  retain: boolean,
  payloadBytes: number,
  maxPayloadBytes: number,
): PublishDecision {
  const parsed = parseDeviceTopic(topic);
  if (parsed === null || parsed.deviceId !== deviceId || parsed.direction !== 'up') {
    return { ok: false, code: 'FLT_MQTT_TOPIC_FORBIDDEN', detail: `publish to ${JSON.stringify(topic)}` };
  }
  const channel = parsed.channel as UpChannel;
  if (retain && channel !== 'status') {
    return { ok: false, code: 'FLT_MQTT_TOPIC_FORBIDDEN', detail: `retained publish to ${topic}` };
  }
  if (payloadBytes > maxPayloadBytes) {
    return { ok: false, code: 'FLT_MSG_TOO_LARGE', detail: `${payloadBytes} bytes to ${topic}` };
  }
  return { ok: true, channel };
}

/** A device may subscribe only to filters that cannot match anything outside its own prefix. */
export function checkSubscribe(deviceId: string, filter: string): Refusal | null {
  if (filterWithinDevice(filter, deviceId)) return null;
  return { code: 'FLT_MQTT_TOPIC_FORBIDDEN', detail: `subscribe to ${JSON.stringify(filter)}` };
}

/**
 * Last line of defence, run on every delivery: a message reaches a device only when its topic is
 * under that device's own prefix, whatever subscription let it through.
 */
export function mayForward(deviceId: string, topic: string): boolean {
  if (!isValidDeviceId(deviceId)) return false;
  const prefix = devicePrefix(deviceId);
  return topic.length > prefix.length + 1 && topic.startsWith(prefix) && topic.charCodeAt(prefix.length) === 0x2f;
}

function refuseConnect(code: ErrorCode, returnCode: ConnackRefusalCode, detail: string): ConnectRefusal {
  return { code, returnCode, detail };
}
