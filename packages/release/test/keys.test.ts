import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import {
  TrustedKeys,
  exportPrivateKey,
  exportPublicKey,
  generateSigningKeyPair,
  importPrivateKey,
  importPublicKey,
  keyIdOf,
  rawPublicKey,
} from '../src/index.ts';
import { T0 } from './release-fixtures.ts';

describe('signing keys', () => {
  it('have a keyId that is the hex sha256 of the raw 32-byte public key', () => {
    const pair = generateSigningKeyPair();
    const raw = rawPublicKey(pair.publicKey);
    expect(raw.length).toBe(32);
    expect(pair.keyId).toBe(createHash('sha256').update(raw).digest('hex'));
    expect(keyIdOf(pair.privateKey)).toBe(pair.keyId);
  });

  it('round-trip through raw base64, PEM and PKCS#8 PEM', () => {
    const pair = generateSigningKeyPair();
    expect(keyIdOf(importPublicKey(exportPublicKey(pair.publicKey, 'raw')))).toBe(pair.keyId);
    expect(keyIdOf(importPublicKey(exportPublicKey(pair.publicKey, 'pem')))).toBe(pair.keyId);
    expect(keyIdOf(importPrivateKey(exportPrivateKey(pair.privateKey)))).toBe(pair.keyId);
  });

  it('refuse keys that are not ed25519', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => importPublicKey(ec.publicKey.export({ format: 'pem', type: 'spki' }).toString())).toThrow(/ed25519/);
    expect(() => importPrivateKey(ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())).toThrow(/ed25519/);
    expect(() => importPublicKey('not-a-key')).toThrow(TypeError);
  });
});

describe('trusted key sets', () => {
  it('report each key status against the injected clock', () => {
    const pair = generateSigningKeyPair();
    const set = TrustedKeys.from([{ keyId: pair.keyId, publicKey: exportPublicKey(pair.publicKey), notBefore: T0, notAfter: T0 + 1000 }]);
    expect(set.status(pair.keyId, T0 - 1)).toBe('not-yet-valid');
    expect(set.status(pair.keyId, T0)).toBe('trusted');
    expect(set.status(pair.keyId, T0 + 1000)).toBe('expired');
    expect(set.status('0'.repeat(64), T0)).toBe('unknown');
    expect(set.revoke(pair.keyId).status(pair.keyId, T0)).toBe('revoked');
  });

  it('refuse an entry whose keyId is not the hash of its public key', () => {
    const a = generateSigningKeyPair();
    const b = generateSigningKeyPair();
    const err = (() => {
      try {
        TrustedKeys.from([{ keyId: b.keyId, publicKey: exportPublicKey(a.publicKey) }]);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe('FLT_CONFIG_INVALID');
  });

  it('do not let a revoked key be trusted again', () => {
    const pair = generateSigningKeyPair();
    const revoked = TrustedKeys.of(pair.publicKey).revoke(pair.keyId);
    expect(() => revoked.with({ keyId: pair.keyId, publicKey: exportPublicKey(pair.publicKey) })).toThrow(FlotillaError);
  });
});
