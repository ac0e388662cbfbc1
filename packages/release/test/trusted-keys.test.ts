import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { TrustedKeys, exportPublicKey } from '../src/index.ts';
import { keys } from './release-fixtures.ts';

const { server, admin, stranger } = keys();
const entry = (k: typeof server, extra: object = {}) => ({ keyId: k.keyId, publicKey: exportPublicKey(k.publicKey), ...extra });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
  return undefined;
}

describe('trusted keys', () => {
  it('trust a key from its notBefore instant up to, but not at, its notAfter instant', () => {
    const set = TrustedKeys.from([entry(server, { notBefore: 1_000, notAfter: 2_000 })]);
    expect(set.status(server.keyId, 999)).toBe('not-yet-valid');
    expect(set.status(server.keyId, 1_000)).toBe('trusted');
    expect(set.status(server.keyId, 1_999)).toBe('trusted');
    expect(set.status(server.keyId, 2_000)).toBe('expired');
    expect(set.usableKeyIds(999)).toEqual([]);
    expect(set.usableKeyIds(1_000)).toEqual([server.keyId]);
  });

  it('call a key nobody listed unknown, and a revoked key revoked whatever its window says', () => {
    const set = TrustedKeys.from([entry(server, { revoked: true, notBefore: 0 })]);
    expect(set.status(stranger.keyId, 0)).toBe('unknown');
    expect(set.status(server.keyId, 10)).toBe('revoked');
    expect(set.usableKeyIds(10)).toEqual([]);
    expect(set.publicKey(stranger.keyId)).toBeUndefined();
  });

  it('refuse a stored list with a keyId that is not the hash of its key, or one key listed twice (FLT_CONFIG_INVALID)', () => {
    expect(codeOf(() => TrustedKeys.from([{ keyId: server.keyId, publicKey: exportPublicKey(stranger.publicKey) }]))).toBe('FLT_CONFIG_INVALID');
    expect(() => TrustedKeys.from([{ keyId: server.keyId, publicKey: exportPublicKey(stranger.publicKey) }])).toThrow(
      `trusted keys: keyId ${server.keyId} is not the sha256 of its public key`,
    );
    expect(codeOf(() => TrustedKeys.from([entry(server), entry(server, { label: 'again' })]))).toBe('FLT_CONFIG_INVALID');
    expect(() => TrustedKeys.from([entry(server), entry(server)])).toThrow(`trusted keys: duplicate keyId ${server.keyId}`);
    expect(codeOf(() => TrustedKeys.from({ keyId: server.keyId }))).toBe('FLT_CONFIG_INVALID');
    expect(() => TrustedKeys.from({ keyId: server.keyId })).toThrow(/^trusted keys is invalid at /);
  });

  it('list entries sorted by keyId whatever order they came in, as copies the caller cannot use to change the set', () => {
    const ids = [server, admin, stranger].map((k) => k.keyId);
    // Keys are random: feed them middle, highest, lowest, an order that neither keeping nor
    // reversing the input turns into the sorted one.
    const [low, mid, high] = [server, admin, stranger].sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
    const set = TrustedKeys.from([mid!, high!, low!].map((k) => entry(k)));
    expect(set.entries().map((e) => e.keyId)).toEqual([...ids].sort());
    expect(set.toJSON()).toEqual(set.entries());
    expect(set.usableKeyIds(0)).toEqual([...ids].sort());
    expect(set.size).toBe(3);
    set.entries()[0]!.revoked = true;
    expect(set.usableKeyIds(0)).toHaveLength(3);
  });

  it('revoke by returning a new set that keeps the key as a tombstone and leaves the old set as it was', () => {
    const set = TrustedKeys.of(server.publicKey, admin.publicKey);
    const next = set.revoke(server.keyId);
    expect(next.has(server.keyId)).toBe(true);
    expect(next.get(server.keyId)?.revoked).toBe(true);
    expect(next.get(admin.keyId)?.revoked).toBeUndefined();
    expect(set.status(server.keyId, 0)).toBe('trusted');
    expect(set.revoke(stranger.keyId)).toBe(set);
  });

  it('replace a live entry with a new window but never re-admit a revoked one (FLT_RELEASE_ROTATION_INVALID)', () => {
    const set = TrustedKeys.of(server.publicKey);
    const narrowed = set.with(entry(server, { notAfter: 5 }));
    expect(narrowed.size).toBe(1);
    expect(narrowed.status(server.keyId, 5)).toBe('expired');
    expect(set.with(entry(admin)).usableKeyIds(0)).toEqual([server.keyId, admin.keyId].sort());
    expect(codeOf(() => set.revoke(server.keyId).with(entry(server)))).toBe('FLT_RELEASE_ROTATION_INVALID');
    expect(() => set.revoke(server.keyId).with(entry(server))).toThrow(`key ${server.keyId} was retired and cannot be trusted again`);
  });

  it('give the same public key object for a keyId each time it is asked', () => {
    const set = TrustedKeys.of(server.publicKey);
    const key = set.publicKey(server.keyId);
    expect(key?.equals(server.publicKey)).toBe(true);
    expect(set.publicKey(server.keyId)).toBe(key);
  });
});
