/**
 * The device policy (../device-policy.ts) written as Mosquitto dynamic-security ACLs. Mosquitto
 * 2.0's dynsec does not substitute %c or %u in ACL topics (checked against 2.0.11: neither publish
 * nor subscribe ACLs match with them), so every device gets its own role with literal topics. docs/external-broker.md lists what these ACLs cannot say and how the gap is closed.
 */
import { DOWN_CHANNELS, UP_CHANNELS, devicePrefix, deviceTopic, fleetFilter, isValidDeviceId } from '@flotilla/protocol';
import type { Channel } from '@flotilla/protocol';

export interface DynsecAcl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'subscribeLiteral' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
  priority: number;
}

/** Marks dynsec clients and roles this server owns; anything without it is never changed. */
export const FLOTILLA_MARK = 'flotilla device';
export const SERVER_ROLE = 'flotilla-server';

const DEVICE_ROLE_PREFIX = 'flotilla-device-';

export function deviceRoleName(deviceId: string): string {
  return `${DEVICE_ROLE_PREFIX}${deviceId}`;
}

/** The device a role was made for, or null when the name is not a device role. */
export function deviceIdOfRole(rolename: string): string | null {
  if (!rolename.startsWith(DEVICE_ROLE_PREFIX)) return null;
  const deviceId = rolename.slice(DEVICE_ROLE_PREFIX.length);
  return isValidDeviceId(deviceId) ? deviceId : null;
}

/**
 * A device may publish on its own up channels only, subscribe only inside its own prefix, and
 * receive only from its own prefix (the last rule stands in for the embedded broker's forward check).
 */
export function deviceAcls(deviceId: string): DynsecAcl[] {
  const prefix = devicePrefix(deviceId);
  return [
    ...UP_CHANNELS.map((c): DynsecAcl => ({ acltype: 'publishClientSend', topic: deviceTopic(deviceId, c), allow: true, priority: 1 })),
    // subscribePattern matches the filter as a whole against this one: `+` or `#` above the device
    // level never matches the literal device id, so cross-device wildcards are refused.
    { acltype: 'subscribePattern', topic: `${prefix}/#`, allow: true, priority: 1 },
    { acltype: 'publishClientReceive', topic: `${prefix}/#`, allow: true, priority: 1 },
    { acltype: 'publishClientReceive', topic: '#', allow: false, priority: 0 },
    { acltype: 'publishClientSend', topic: '#', allow: false, priority: 0 },
  ];
}

/** The server's own account: publish down channels (and clear retained up messages), subscribe to up channels. */
export function serverAcls(): DynsecAcl[] {
  return [...DOWN_CHANNELS, ...UP_CHANNELS].map((c): DynsecAcl => ({ acltype: 'publishClientSend', topic: anyDeviceTopic(c), allow: true, priority: 1 }));
}

/** `flt/v1/d/+/<channel>`: one channel of every device. */
export function anyDeviceTopic(channel: Channel): string {
  const levels = fleetFilter('status').split('/');
  levels[levels.length - 1] = channel;
  return levels.join('/');
}
