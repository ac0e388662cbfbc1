import { FlotillaError, isValidDeviceId } from '@flotilla/protocol';

/** What the download endpoints need from enrollment: the same credential check the broker uses. */
export interface DeviceCredentialCheck {
  authenticate(deviceId: string, secret: Buffer): boolean;
}

/**
 * Authenticates a device from `Authorization: Basic base64(deviceId:credential)`. Every failure
 * (no header, malformed, unknown device, wrong or revoked credential) is one indistinguishable 401,
 * so the answer tells an attacker nothing about which device ids exist.
 */
export function authenticateDevice(header: string | undefined, check: DeviceCredentialCheck): string {
  const refuse = (): never => {
    throw new FlotillaError('FLT_UNAUTHENTICATED', 'a device credential is required (Authorization: Basic base64(deviceId:credential))');
  };
  const m = header === undefined ? null : /^Basic ([A-Za-z0-9+/]{4,700}={0,2})$/.exec(header);
  if (!m) return refuse();
  const decoded = Buffer.from(m[1]!, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon < 1) return refuse();
  const deviceId = decoded.subarray(0, colon).toString('utf8');
  const secret = decoded.subarray(colon + 1);
  if (!isValidDeviceId(deviceId) || secret.length === 0) return refuse();
  return check.authenticate(deviceId, secret) ? deviceId : refuse();
}

export function isBasicAuth(header: string | undefined): boolean {
  return header !== undefined && header.startsWith('Basic ');
}
