import { isValidDeviceId } from './ids.ts';
import { TOPIC_ROOT } from './version.ts';

/**
 * Topic scheme: `flt/v1/d/<deviceId>/<channel>`. Everything a device may touch lives under its own
 * prefix, which is what the broker policy enforces.
 *
 * Up (device → server): status, inventory, heartbeat, reported, events.
 * Down (server → device): desired, ack, cmd.
 */
export const UP_CHANNELS = ['status', 'inventory', 'heartbeat', 'reported', 'events'] as const;
export const DOWN_CHANNELS = ['desired', 'ack', 'cmd'] as const;

export type UpChannel = (typeof UP_CHANNELS)[number];
export type DownChannel = (typeof DOWN_CHANNELS)[number];
export type Channel = UpChannel | DownChannel;

const DEVICE_SEGMENT = 'd';

export function devicePrefix(deviceId: string): string {
  if (!isValidDeviceId(deviceId)) throw new TypeError(`invalid device id: ${JSON.stringify(deviceId)}`);
  return `${TOPIC_ROOT}/${DEVICE_SEGMENT}/${deviceId}`;
}

export function deviceTopic(deviceId: string, channel: Channel): string {
  return `${devicePrefix(deviceId)}/${channel}`;
}

/** Subscription filter the server uses for one up channel across all devices. */
export function fleetFilter(channel: UpChannel): string {
  return `${TOPIC_ROOT}/${DEVICE_SEGMENT}/+/${channel}`;
}

export interface ParsedTopic {
  deviceId: string;
  channel: Channel;
  direction: 'up' | 'down';
}

/** Parses a concrete topic (no wildcards). Returns null for anything outside the scheme. */
export function parseDeviceTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 5) return null;
  const [root, ver, seg, deviceId, channel] = parts as [string, string, string, string, string];
  if (`${root}/${ver}` !== TOPIC_ROOT || seg !== DEVICE_SEGMENT) return null;
  if (!isValidDeviceId(deviceId)) return null;
  if ((UP_CHANNELS as readonly string[]).includes(channel)) return { deviceId, channel: channel as UpChannel, direction: 'up' };
  if ((DOWN_CHANNELS as readonly string[]).includes(channel)) return { deviceId, channel: channel as DownChannel, direction: 'down' };
  return null;
}

/**
 * True when a subscription filter can only ever match topics under this device's own prefix.
 * Wildcards are allowed only after the device id segment (`flt/v1/d/<id>/#`, `flt/v1/d/<id>/+`).
 */
export function filterWithinDevice(filter: string, deviceId: string): boolean {
  const prefix = devicePrefix(deviceId);
  if (filter === prefix) return true;
  if (!filter.startsWith(prefix + '/')) return false;
  const rest = filter.slice(prefix.length + 1).split('/');
  // '#' only as the last level; '+' only as a whole level (MQTT rules), both already scoped.
  return rest.every((level, i) => level === '+' || (level === '#' && i === rest.length - 1) || !/[+#]/.test(level));
}
