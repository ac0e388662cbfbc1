import { createHash, sign as ed25519Sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { TrustedKeys, checkSignatures, exportPublicKey, manifestDigest, signatureMatches, signingPayload, type ReleaseSignature } from '../src/index.ts';
import { keys } from './release-fixtures.ts';

const { server, admin, stranger } = keys();
const statement = { hello: 'fleet' };
const sigBy = (k: typeof server, context: 'release-manifest' | 'key-rotation' = 'release-manifest', value: unknown = statement): ReleaseSignature => ({
  keyId: k.keyId,
  sig: ed25519Sign(null, signingPayload(context, value), k.privateKey).toString('base64'),
});
const trusted = TrustedKeys.of(server.publicKey, admin.publicKey);

function refusal(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('signature checks', () => {
  it('return the distinct valid signers, sorted, once the threshold is met', () => {
    const both = [sigBy(server), sigBy(admin), sigBy(server)];
    expect(checkSignatures('release-manifest', statement, both, trusted, 0, 2)).toEqual([server.keyId, admin.keyId].sort());
    expect(checkSignatures('release-manifest', statement, [sigBy(stranger), sigBy(admin)], trusted, 0, 1)).toEqual([admin.keyId]);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuse a threshold of %s as a programming error', (threshold) => {
    expect(() => checkSignatures('release-manifest', statement, [sigBy(server)], trusted, 0, threshold)).toThrow(new TypeError('threshold must be an integer >= 1'));
  });

  it('name a bad signature first when a revoked key also signed (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const set = trusted.revoke(admin.keyId);
    const forged = { keyId: server.keyId, sig: sigBy(stranger).sig };
    const err = refusal(() => checkSignatures('release-manifest', statement, [sigBy(admin), forged], set, 0, 1));
    expect(err.code).toBe('FLT_RELEASE_BAD_SIGNATURE');
    expect(err.message).toBe('release signature does not verify');
    expect(err.details).toEqual({
      threshold: 1,
      validKeys: 0,
      signatures: [
        { keyId: admin.keyId, outcome: 'revoked' },
        { keyId: server.keyId, outcome: 'bad-signature' },
      ],
    });
  });

  it.each([
    ['revoked', (s: TrustedKeys) => s.revoke(server.keyId), 0],
    ['not yet valid', () => TrustedKeys.from([{ keyId: server.keyId, publicKey: exportPublicKey(server.publicKey), notBefore: 10 }]), 9],
    ['expired', () => TrustedKeys.from([{ keyId: server.keyId, publicKey: exportPublicKey(server.publicKey), notAfter: 10 }]), 10],
  ] as const)('refuse a signature by a %s key, naming the key status (FLT_RELEASE_KEY_REVOKED)', (status, set, now) => {
    const err = refusal(() => checkSignatures('key-rotation', statement, [sigBy(server, 'key-rotation'), sigBy(stranger, 'key-rotation')], set(trusted), now, 1));
    expect(err.code).toBe('FLT_RELEASE_KEY_REVOKED');
    expect(err.message).toBe('key rotation is signed by a retired, revoked or not currently valid key');
    expect(err.details).toMatchObject({ signatures: [{ keyId: server.keyId, outcome: status.replaceAll(' ', '-') }, { keyId: stranger.keyId, outcome: 'unknown' }] });
  });

  it('say how many trusted signatures there were when too few (FLT_RELEASE_UNKNOWN_KEY)', () => {
    const err = refusal(() => checkSignatures('release-manifest', statement, [sigBy(server), sigBy(stranger)], trusted, 0, 2));
    expect(err.code).toBe('FLT_RELEASE_UNKNOWN_KEY');
    expect(err.message).toBe('release has 1 trusted signature(s), 2 required');
    expect(err.details).toEqual({
      threshold: 2,
      validKeys: 1,
      signatures: [
        { keyId: server.keyId, outcome: 'valid' },
        { keyId: stranger.keyId, outcome: 'unknown' },
      ],
    });
  });

  it('say that no trusted key signed when none did (FLT_RELEASE_UNKNOWN_KEY)', () => {
    const err = refusal(() => checkSignatures('key-rotation', statement, [sigBy(stranger, 'key-rotation')], trusted, 0, 1));
    expect(err.code).toBe('FLT_RELEASE_UNKNOWN_KEY');
    expect(err.message).toBe('key rotation is not signed by any trusted key');
    expect(refusal(() => checkSignatures('release-manifest', statement, [], trusted, 0, 1)).code).toBe('FLT_RELEASE_UNKNOWN_KEY');
  });

  it('treat a signature over another context, another value or garbage bytes as not matching', () => {
    const payload = signingPayload('release-manifest', statement);
    expect(signatureMatches(payload, sigBy(server), trusted)).toBe(true);
    expect(signatureMatches(payload, sigBy(server, 'key-rotation'), trusted)).toBe(false);
    expect(signatureMatches(payload, sigBy(server, 'release-manifest', { hello: 'other' }), trusted)).toBe(false);
    expect(signatureMatches(payload, { keyId: server.keyId, sig: 'AAAA' }, trusted)).toBe(false);
    expect(signatureMatches(payload, { keyId: stranger.keyId, sig: sigBy(stranger).sig }, trusted)).toBe(false);
  });

  it('cover exactly the documented bytes: the context line, then canonical JSON', () => {
    expect(signingPayload('release-manifest', { b: 1, a: 'x' }).toString('utf8')).toBe('flotilla:release-manifest:v1\n{"a":"x","b":1}');
    expect(signingPayload('key-rotation', [1]).toString('utf8')).toBe('flotilla:key-rotation:v1\n[1]');
    // A signer that follows docs/release-signing.md without this package produces a valid signature.
    const bytes = Buffer.from(`flotilla:release-manifest:v1\n${JSON.stringify({ hello: 'fleet' })}`, 'utf8');
    const sig = { keyId: server.keyId, sig: ed25519Sign(null, bytes, server.privateKey).toString('base64') };
    expect(checkSignatures('release-manifest', statement, [sig], trusted, 0, 1)).toEqual([server.keyId]);
  });

  it('identify a manifest by the sha256 of its canonical JSON alone', () => {
    expect(manifestDigest({ b: 1, a: 'x' })).toBe(createHash('sha256').update('{"a":"x","b":1}').digest('hex'));
  });
});

