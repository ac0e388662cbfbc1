import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { TrustedKeys, applyRotation, createRotation, exportPublicKey, generateSigningKeyPair, sign, verifyRelease } from '../src/index.ts';
import { DAY, T0, flipSignatureBit, makeRelease } from './release-fixtures.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
  return undefined;
}

const now = T0 + DAY;
const oldKey = generateSigningKeyPair();
const newKey = generateSigningKeyPair();
const stranger = generateSigningKeyPair();
const trusted = TrustedKeys.of(oldKey.publicKey);

describe('key rotation', () => {
  it('signed by the current key adds its successor and retires itself', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, label: 'server-2025' }], retire: [oldKey.keyId] }, oldKey.privateKey);
    const next = applyRotation(trusted, rotation, { now });
    expect(next.status(newKey.keyId, now)).toBe('trusted');
    expect(next.status(oldKey.keyId, now)).toBe('revoked');
    expect(next.get(newKey.keyId)?.label).toBe('server-2025');
    // The set it was applied to is unchanged.
    expect(trusted.status(oldKey.keyId, now)).toBe('trusted');

    const release = sign(makeRelease().manifest, newKey.privateKey);
    expect(verifyRelease(release, { trustedKeys: next, now }).keyIds).toEqual([newKey.keyId]);
    const byOld = sign(makeRelease().manifest, oldKey.privateKey);
    expect(codeOf(() => verifyRelease(byOld, { trustedKeys: next, now }))).toBe('FLT_RELEASE_KEY_REVOKED');
  });

  it('survives a JSON round trip of both the statement and the trusted set', () => {
    const rotation = JSON.parse(JSON.stringify(createRotation({ issuedAt: now, add: [{ publicKey: exportPublicKey(newKey.publicKey, 'pem') }] }, oldKey.privateKey)));
    const next = TrustedKeys.from(JSON.parse(JSON.stringify(applyRotation(trusted, rotation, { now }))));
    expect(next.usableKeyIds(now)).toEqual([oldKey.keyId, newKey.keyId].sort());
  });

  it('is refused when signed by an unknown key (FLT_RELEASE_UNKNOWN_KEY)', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: stranger.publicKey }] }, stranger.privateKey);
    expect(codeOf(() => applyRotation(trusted, rotation, { now }))).toBe('FLT_RELEASE_UNKNOWN_KEY');
  });

  it('is refused when signed by a retired key (FLT_RELEASE_KEY_REVOKED)', () => {
    const both = TrustedKeys.of(oldKey.publicKey, newKey.publicKey).revoke(oldKey.keyId);
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: stranger.publicKey }] }, oldKey.privateKey);
    expect(codeOf(() => applyRotation(both, rotation, { now }))).toBe('FLT_RELEASE_KEY_REVOKED');
  });

  it('is refused when its statement was altered after signing (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    const swapped = createRotation({ issuedAt: now, add: [{ publicKey: stranger.publicKey }] }, stranger.privateKey);
    rotation.signed.add = swapped.signed.add;
    expect(codeOf(() => applyRotation(trusted, rotation, { now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');

    const flipped = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    flipped.signatures[0]!.sig = flipSignatureBit(flipped.signatures[0]!.sig);
    expect(codeOf(() => applyRotation(trusted, flipped, { now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('cannot be passed off as a release signature, nor a release signature as a rotation', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    const release = sign(makeRelease().manifest, oldKey.privateKey);
    const forgedRotation = { signed: rotation.signed, signatures: release.signatures };
    expect(codeOf(() => applyRotation(trusted, forgedRotation, { now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('replayed after the key it added was retired does not re-admit that key (FLT_RELEASE_ROTATION_INVALID)', () => {
    const addNew = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    const afterAdd = applyRotation(trusted, addNew, { now });
    const retireNew = createRotation({ issuedAt: now + 1, retire: [newKey.keyId] }, oldKey.privateKey);
    const afterRetire = applyRotation(afterAdd, retireNew, { now });
    expect(codeOf(() => applyRotation(afterRetire, addNew, { now }))).toBe('FLT_RELEASE_ROTATION_INVALID');
  });

  it('applied twice changes nothing the second time', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notAfter: now + 10 * DAY }] }, oldKey.privateKey);
    const once = applyRotation(trusted, rotation, { now });
    expect(applyRotation(once, rotation, { now }).entries()).toEqual(once.entries());
  });

  it('is refused when it would leave no usable key (FLT_RELEASE_ROTATION_INVALID)', () => {
    const rotation = createRotation({ issuedAt: now, retire: [oldKey.keyId] }, oldKey.privateKey);
    expect(codeOf(() => applyRotation(trusted, rotation, { now }))).toBe('FLT_RELEASE_ROTATION_INVALID');
  });

  it('is refused when an added keyId is not the hash of its public key (FLT_RELEASE_ROTATION_INVALID)', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    rotation.signed.add[0]!.keyId = stranger.keyId;
    expect(codeOf(() => applyRotation(trusted, rotation, { now }))).toBe('FLT_RELEASE_ROTATION_INVALID');
  });

  it('needs as many distinct trusted signers as the threshold', () => {
    const both = TrustedKeys.of(oldKey.publicKey, newKey.publicKey);
    const single = createRotation({ issuedAt: now, add: [{ publicKey: stranger.publicKey }] }, oldKey.privateKey);
    expect(codeOf(() => applyRotation(both, single, { now, threshold: 2 }))).toBe('FLT_RELEASE_UNKNOWN_KEY');
    const dual = createRotation({ issuedAt: now, add: [{ publicKey: stranger.publicKey }] }, [oldKey.privateKey, newKey.privateKey]);
    expect(applyRotation(both, dual, { now, threshold: 2 }).has(stranger.keyId)).toBe(true);
  });

  it('carries the validity window and label of an added key into the trusted set', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notBefore: now + DAY, notAfter: now + 9 * DAY, label: 'next' }] }, oldKey.privateKey);
    const next = applyRotation(trusted, rotation, { now });
    expect(next.get(newKey.keyId)).toEqual({ keyId: newKey.keyId, publicKey: exportPublicKey(newKey.publicKey), notBefore: now + DAY, notAfter: now + 9 * DAY, label: 'next' });
    expect(next.status(newKey.keyId, now)).toBe('not-yet-valid');
  });

  it('may retire the signing key in favour of a successor that only becomes valid later', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notBefore: now + DAY }], retire: [oldKey.keyId] }, oldKey.privateKey);
    expect(applyRotation(trusted, rotation, { now }).usableKeyIds(now + DAY)).toEqual([newKey.keyId]);
  });

  it('is refused when the only key it would leave expires at the instant it is applied (FLT_RELEASE_ROTATION_INVALID)', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notAfter: now }], retire: [oldKey.keyId] }, oldKey.privateKey);
    expect(codeOf(() => applyRotation(trusted, rotation, { now }))).toBe('FLT_RELEASE_ROTATION_INVALID');
    const later = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notAfter: now + 1 }], retire: [oldKey.keyId] }, oldKey.privateKey);
    expect(applyRotation(trusted, later, { now }).usableKeyIds(now)).toEqual([newKey.keyId]);
  });

  it('leaves an already trusted key as it was when a rotation adds it again with another window', () => {
    const both = TrustedKeys.of(oldKey.publicKey, newKey.publicKey);
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notAfter: now + 1, label: 'narrowed' }] }, oldKey.privateKey);
    expect(applyRotation(both, rotation, { now }).get(newKey.keyId)).toEqual(both.get(newKey.keyId));
  });

  it.each([
    ['neither adds nor retires a key', () => createRotation({ issuedAt: now }, oldKey.privateKey), 'it neither adds nor retires a key'],
    ['adds one key twice', () => createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }, { publicKey: newKey.publicKey }] }, oldKey.privateKey), 'is added twice'],
    ['adds and retires the same key', () => createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }], retire: [newKey.keyId] }, oldKey.privateKey), 'both added and retired'],
    ['gives a key a window that ends where it starts', () => createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notBefore: now, notAfter: now }] }, oldKey.privateKey), 'notAfter before notBefore'],
  ])('cannot be written when it %s (FLT_RELEASE_ROTATION_INVALID)', (_what, write, reason) => {
    expect(codeOf(write)).toBe('FLT_RELEASE_ROTATION_INVALID');
    expect(write).toThrow(reason);
  });

  it('accepts a key window of one millisecond', () => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey, notBefore: now, notAfter: now + 1 }] }, oldKey.privateKey);
    expect(applyRotation(trusted, rotation, { now }).status(newKey.keyId, now)).toBe('trusted');
  });

  it.each([
    ['is not an object', 'rotate please'],
    ['carries an extra field', (r: object) => Object.assign(r, { note: 'x' })],
    ['names another statement type', (r: { signed: object }) => Object.assign(r.signed, { type: 'flotilla-release' })],
    ['has no signatures', (r: object) => Object.assign(r, { signatures: [] })],
    ['neither adds nor retires, though signed', (r: { signed: { add: unknown[] } }) => Object.assign(r.signed, { add: [] })],
  ])('is refused when it %s (FLT_RELEASE_ROTATION_INVALID)', (_what, change) => {
    const rotation = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    const value = typeof change === 'string' ? change : (change(rotation as never), rotation);
    expect(codeOf(() => applyRotation(trusted, value, { now }))).toBe('FLT_RELEASE_ROTATION_INVALID');
  });

  it('says in each refusal what was wrong with the rotation', () => {
    const retireOnly = createRotation({ issuedAt: now, retire: [oldKey.keyId] }, oldKey.privateKey);
    expect(() => applyRotation(trusted, retireOnly, { now })).toThrow('key rotation is invalid: it would leave no usable signing key');
    expect(() => applyRotation(trusted, 'rotate', { now })).toThrow(/^key rotation is invalid at /);
    expect(() => applyRotation(trusted, { signed: () => 1 }, { now })).toThrow('key rotation is not plain data');
    const mislabelled = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    mislabelled.signed.add[0]!.keyId = stranger.keyId;
    expect(() => applyRotation(trusted, mislabelled, { now })).toThrow(`key rotation is invalid: keyId ${stranger.keyId} is not the sha256 of its public key`);
    const bad = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    bad.signed.type = 'x' as never;
    expect(() => applyRotation(trusted, bad, { now })).toThrow(/^key rotation is invalid at /);
    const addNew = createRotation({ issuedAt: now, add: [{ publicKey: newKey.publicKey }] }, oldKey.privateKey);
    const retired = applyRotation(applyRotation(trusted, addNew, { now }), createRotation({ issuedAt: now, retire: [newKey.keyId] }, oldKey.privateKey), { now });
    expect(() => applyRotation(retired, addNew, { now })).toThrow(`key rotation is invalid: key ${newKey.keyId} was retired and cannot be trusted again`);
  });
});

