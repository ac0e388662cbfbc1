import type { KeyObject } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { FlotillaError, Timestamp, strict } from '@flotilla/protocol';
import { KeyId, PublicKeyBase64, checkSchema } from './manifest-schema.ts';
import { exportPublicKey, importPublicKey, keyIdOf } from './keys.ts';

export const TrustedKeyEntry = Type.Object(
  {
    keyId: KeyId,
    /** Raw 32-byte ed25519 public key, base64. */
    publicKey: PublicKeyBase64,
    /** Epoch ms; signatures by this key are refused before this instant. */
    notBefore: Type.Optional(Timestamp),
    /** Epoch ms; signatures by this key are refused from this instant on. */
    notAfter: Type.Optional(Timestamp),
    /** A retired or revoked key stays listed as a tombstone, so no replayed rotation can re-admit it. */
    revoked: Type.Optional(Type.Boolean()),
    label: Type.Optional(Type.String({ maxLength: 128 })),
  },
  strict,
);
export type TrustedKeyEntry = Static<typeof TrustedKeyEntry>;

export const TrustedKeysDocument = Type.Array(TrustedKeyEntry, { maxItems: 256 });

export type KeyStatus = 'trusted' | 'unknown' | 'revoked' | 'not-yet-valid' | 'expired';

/**
 * An immutable set of keys allowed to sign releases and rotations. Changes return a new set, so a
 * caller can verify a rotation against the old set and persist the new one in a single step.
 */
export class TrustedKeys {
  readonly #entries: ReadonlyMap<string, Readonly<TrustedKeyEntry>>;
  readonly #keyObjects = new Map<string, KeyObject>();

  private constructor(entries: ReadonlyMap<string, Readonly<TrustedKeyEntry>>) {
    this.#entries = entries;
  }

  /**
   * Builds a set from stored entries (e.g. the agent's persisted trust file). Every keyId must be
   * the sha256 of its public key; duplicates are refused. Throws FLT_CONFIG_INVALID.
   */
  static from(entries: unknown): TrustedKeys {
    const list = checkSchema<TrustedKeyEntry[]>(TrustedKeysDocument, entries, 'FLT_CONFIG_INVALID', 'trusted keys');
    const map = new Map<string, Readonly<TrustedKeyEntry>>();
    for (const entry of list) {
      if (map.has(entry.keyId)) throw new FlotillaError('FLT_CONFIG_INVALID', `trusted keys: duplicate keyId ${entry.keyId}`);
      if (keyIdOf(importPublicKey(entry.publicKey)) !== entry.keyId) {
        throw new FlotillaError('FLT_CONFIG_INVALID', `trusted keys: keyId ${entry.keyId} is not the sha256 of its public key`);
      }
      map.set(entry.keyId, Object.freeze({ ...entry }));
    }
    return new TrustedKeys(map);
  }

  /** Convenience for tests and first boot: trusts each public key with no validity window. */
  static of(...publicKeys: KeyObject[]): TrustedKeys {
    return TrustedKeys.from(publicKeys.map((key) => ({ keyId: keyIdOf(key), publicKey: exportPublicKey(key) })));
  }

  get size(): number {
    return this.#entries.size;
  }

  get(keyId: string): Readonly<TrustedKeyEntry> | undefined {
    return this.#entries.get(keyId);
  }

  has(keyId: string): boolean {
    return this.#entries.has(keyId);
  }

  status(keyId: string, now: number): KeyStatus {
    const entry = this.#entries.get(keyId);
    if (!entry) return 'unknown';
    if (entry.revoked) return 'revoked';
    if (entry.notBefore !== undefined && now < entry.notBefore) return 'not-yet-valid';
    if (entry.notAfter !== undefined && now >= entry.notAfter) return 'expired';
    return 'trusted';
  }

  /** Key ids that may sign at `now`. */
  usableKeyIds(now: number): string[] {
    return [...this.#entries.keys()].filter((id) => this.status(id, now) === 'trusted').sort();
  }

  publicKey(keyId: string): KeyObject | undefined {
    const entry = this.#entries.get(keyId);
    if (!entry) return undefined;
    let key = this.#keyObjects.get(keyId);
    if (!key) {
      key = importPublicKey(entry.publicKey);
      this.#keyObjects.set(keyId, key);
    }
    return key;
  }

  /** Adds (or, when the keyId is present and not revoked, replaces) one entry. */
  with(entry: TrustedKeyEntry): TrustedKeys {
    const existing = this.#entries.get(entry.keyId);
    if (existing?.revoked) throw new FlotillaError('FLT_RELEASE_ROTATION_INVALID', `key ${entry.keyId} was retired and cannot be trusted again`);
    return TrustedKeys.from([...this.entries().filter((e) => e.keyId !== entry.keyId), entry]);
  }

  /** Marks a key revoked; it stays listed as a tombstone. Unknown ids are ignored. */
  revoke(keyId: string): TrustedKeys {
    if (!this.#entries.has(keyId)) return this;
    return TrustedKeys.from(this.entries().map((e) => (e.keyId === keyId ? { ...e, revoked: true } : e)));
  }

  /** Entries sorted by keyId: a stable form to persist. */
  entries(): TrustedKeyEntry[] {
    return [...this.#entries.values()].map((e) => ({ ...e })).sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
  }

  toJSON(): TrustedKeyEntry[] {
    return this.entries();
  }
}
