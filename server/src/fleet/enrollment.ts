import { FlotillaError, type EnrollRequest, type EnrollResponse } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';
import type { EnrollmentTokens } from '../auth/enrollment-tokens.ts';
import { hashSecret, newSecret, sameHash } from '../auth/secrets.ts';
import type { DeviceStore } from './device-store.ts';
import type { DeviceLink } from './device-link.ts';

export interface EnrollmentDeps {
  db: Db;
  devices: DeviceStore;
  tokens: EnrollmentTokens;
  link: DeviceLink;
  now: () => number;
  autoAccept: boolean;
  retryAfterSec: number;
  mqtt: { tcp: string; ws?: string };
  onResult?: (result: 'pending' | 'accepted' | 'refused') => void;
}

/**
 * Device enrollment. A device proves it holds the fleet token and its own enrollment key; the key
 * binds the device id to the first device that claimed it, so a leaked fleet token can neither
 * take over an enrolled id nor collect its credential. The call is idempotent and the device
 * repeats it until it is accepted; each accepted call hands out a fresh credential, which replaces
 * (and disconnects) any earlier one.
 */
export class Enrollment {
  readonly #d: EnrollmentDeps;

  constructor(deps: EnrollmentDeps) {
    this.#d = deps;
  }

  enroll(req: EnrollRequest): EnrollResponse {
    try {
      const res = this.#enroll(req);
      this.#d.onResult?.(res.status);
      return res;
    } catch (err) {
      this.#d.onResult?.('refused');
      throw err;
    }
  }

  #enroll(req: EnrollRequest): EnrollResponse {
    const { db, devices, tokens, now } = this.#d;
    if (!tokens.isValid(req.enrollmentToken)) throw new FlotillaError('FLT_ENROLL_TOKEN_INVALID');
    const keyHash = hashSecret(req.enrollmentKey);
    let credential: string | null = null;
    let replaced = false;

    const outcome = db.transaction((): 'pending' | 'accepted' => {
      const t = now();
      const row = devices.getRow(req.deviceId);
      if (!row) {
        const status = this.#d.autoAccept ? 'accepted' : 'pending';
        devices.insert({ id: req.deviceId, status, enrollmentKeyHash: keyHash, labels: req.labels ?? {}, inventory: req.inventory ?? null, now: t });
        if (status === 'pending') return 'pending';
      } else {
        if (row.enrollment_key_hash !== null && !sameHash(row.enrollment_key_hash, keyHash)) {
          throw new FlotillaError('FLT_ENROLL_KEY_MISMATCH');
        }
        if (row.status === 'rejected') throw new FlotillaError('FLT_ENROLL_REJECTED');
        if (row.status === 'revoked') throw new FlotillaError('FLT_DEVICE_REVOKED');
        if (row.enrollment_key_hash === null) {
          // First contact of a pre-authorized device: the admin's labels win over the device's own.
          const labels = { ...(req.labels ?? {}), ...(JSON.parse(row.labels) as Record<string, string>) };
          devices.setEnrollment(req.deviceId, { enrollmentKeyHash: keyHash, labels, inventory: req.inventory ?? null }, t);
        }
        if (row.status === 'preauthorized') devices.setStatus(req.deviceId, 'accepted', t);
        else if (row.status === 'pending') return 'pending';
        replaced = row.credential_hash !== null;
      }
      credential = newSecret('fltd');
      devices.setCredential(req.deviceId, hashSecret(credential), t);
      return 'accepted';
    })();

    if (outcome === 'pending') {
      return { status: 'pending', deviceId: req.deviceId, retryAfterSec: this.#d.retryAfterSec };
    }
    // The old credential no longer authenticates; a session opened with it must not linger.
    if (replaced) this.#d.link.kick(req.deviceId);
    return { status: 'accepted', deviceId: req.deviceId, credential: credential!, mqtt: this.#d.mqtt };
  }

  /** Broker authentication: an accepted device presenting its current credential. */
  authenticate(deviceId: string, secret: Buffer): boolean {
    const stored = this.#d.devices.activeCredentialHash(deviceId);
    return stored !== null && sameHash(stored, hashSecret(secret));
  }
}
