import type { ErrorCode, UpChannel } from '@flotilla/protocol';

/** Decides whether a device may connect. Injected so the broker never touches the database. */
export interface DeviceAuthenticator {
  /** true when deviceId is an accepted, non-revoked device and secret is its current credential */
  authenticate(deviceId: string, secret: Buffer): boolean | Promise<boolean>;
}

export interface DevicePacketInfo {
  retain: boolean;
  qos: 0 | 1 | 2;
}

/**
 * What the broker tells the rest of the server. Handlers run synchronously inside the broker's
 * packet path: they must not throw (a throw is caught and logged) and should hand real work off.
 */
export interface BrokerEvents {
  deviceConnected(deviceId: string): void;
  deviceDisconnected(deviceId: string): void;
  /** A device published on one of its own up channels (already policy-checked, payload size-checked). */
  deviceMessage(deviceId: string, channel: UpChannel, payload: Buffer, packet: DevicePacketInfo): void;
  policyViolation?(deviceId: string | null, code: ErrorCode, detail: string): void;
}
