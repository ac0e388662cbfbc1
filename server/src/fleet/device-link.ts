import type { DownChannel } from '@flotilla/protocol';

/** What the fleet needs from the MQTT side: send to one device, see it, and cut it off. */
export interface DeviceLink {
  send(deviceId: string, channel: DownChannel, payload: Buffer, opts: { retain: boolean }): Promise<void>;
  isConnected(deviceId: string): boolean;
  kick(deviceId: string): boolean;
}
