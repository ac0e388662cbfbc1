import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { DEVICE_ID_PATTERN, FlotillaError, MqttEndpoints } from '@flotilla/protocol';
import { writeFileAtomic } from '../storage/atomic-write.ts';

export const IDENTITY_FILE = 'identity.json';

export const DeviceIdentitySchema = Type.Object(
  {
    version: Type.Literal(1),
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
    /** 32 random bytes, base64url. Proves to the server that this is the device that enrolled. */
    enrollmentKey: Type.String({ minLength: 32, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }),
    credential: Type.Optional(Type.String({ minLength: 1 })),
    mqtt: Type.Optional(MqttEndpoints),
    createdAt: Type.Integer({ minimum: 0 }),
    enrolledAt: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type DeviceIdentity = Static<typeof DeviceIdentitySchema>;

export function newEnrollmentKey(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Owns `<dataDir>/identity.json` (mode 0600, replaced atomically). The enrollment key is made once
 * per device id and then kept: the server binds the device to it, so losing it means re-approval.
 */
export class IdentityStore {
  readonly path: string;
  #identity: DeviceIdentity;

  private constructor(path: string, identity: DeviceIdentity) {
    this.path = path;
    this.#identity = identity;
  }

  /** Loads the identity, or creates one (new enrollment key) when absent or made for another device id. */
  static open(dataDir: string, deviceId: string, now: () => number = Date.now): { store: IdentityStore; created: boolean; replacedDeviceId?: string } {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, IDENTITY_FILE);
    const existing = readIdentity(path);
    if (existing && existing.deviceId === deviceId) {
      // Tighten the mode in case someone copied the file around with a loose umask.
      chmodSync(path, 0o600);
      return { store: new IdentityStore(path, existing), created: false };
    }
    const identity: DeviceIdentity = { version: 1, deviceId, enrollmentKey: newEnrollmentKey(), createdAt: now() };
    writeFileAtomic(path, JSON.stringify(identity, null, 2) + '\n', 0o600);
    const result: { store: IdentityStore; created: boolean; replacedDeviceId?: string } = { store: new IdentityStore(path, identity), created: true };
    if (existing) result.replacedDeviceId = existing.deviceId;
    return result;
  }

  get current(): Readonly<DeviceIdentity> {
    return this.#identity;
  }

  get enrolled(): boolean {
    return this.#identity.credential !== undefined && this.#identity.mqtt !== undefined;
  }

  saveCredential(credential: string, mqtt: DeviceIdentity['mqtt'], now: number): void {
    const next: DeviceIdentity = { ...this.#identity, credential, enrolledAt: now };
    if (mqtt) next.mqtt = mqtt;
    writeFileAtomic(this.path, JSON.stringify(next, null, 2) + '\n', 0o600);
    this.#identity = next;
  }

  /** Forgets the credential (kept key) after the server refused it, so a restart re-enrolls first. */
  clearCredential(): void {
    if (this.#identity.credential === undefined) return;
    const { credential: _dropped, ...rest } = this.#identity;
    writeFileAtomic(this.path, JSON.stringify(rest, null, 2) + '\n', 0o600);
    this.#identity = rest;
  }
}

function readIdentity(path: string): DeviceIdentity | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Value.Check(DeviceIdentitySchema, parsed)) {
    // Never regenerate silently: a new key would lock this device out of its own enrollment.
    throw new FlotillaError('FLT_AGENT_IDENTITY_INVALID', `${path} is not a valid identity file; move it away to enroll afresh`);
  }
  return parsed;
}
