import { sign as ed25519Sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import {
  TrustedKeys,
  attachSignature,
  canonicalJsonBytes,
  exportPrivateKey,
  manifestDigest,
  signingPayload,
  sign,
  signDetached,
  verifyRelease,
  type SignedRelease,
} from '../src/index.ts';
import { DAY, T0, flipSignatureBit, keys, makeRelease } from './release-fixtures.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
  return undefined;
}

const { server, admin, stranger } = keys();
const trusted = TrustedKeys.of(server.publicKey);
const now = T0 + DAY;

function signed(): SignedRelease {
  return sign(makeRelease().manifest, server.privateKey);
}

describe('verifyRelease accepts', () => {
  it('a manifest signed by a trusted key, returning the manifest, its digest and signer', () => {
    const release = signed();
    const verified = verifyRelease(release, { trustedKeys: trusted, now });
    expect(verified.manifest).toEqual(release.signed);
    expect(verified.digest).toBe(manifestDigest(release.signed));
    expect(verified.keyIds).toEqual([server.keyId]);
  });

  it('the same envelope after a JSON round trip with keys reordered', () => {
    const release = signed();
    const reordered = JSON.parse(JSON.stringify({ signatures: release.signatures, signed: Object.fromEntries(Object.entries(release.signed).reverse()) }));
    expect(verifyRelease(reordered, { trustedKeys: trusted, now }).manifest.version).toBe('1.2.0');
  });

  it('the same manifest again at the same counter when its digest matches the accepted one', () => {
    const release = signed();
    const first = verifyRelease(release, { trustedKeys: trusted, now });
    const again = verifyRelease(release, { trustedKeys: trusted, now, lastAcceptedCounter: 5, lastAcceptedDigest: first.digest });
    expect(again.digest).toBe(first.digest);
  });

  it('a higher counter than the one accepted', () => {
    const release = sign(makeRelease({ releaseCounter: 6 }).manifest, server.privateKey);
    expect(verifyRelease(release, { trustedKeys: trusted, now, lastAcceptedCounter: 5 }).manifest.releaseCounter).toBe(6);
  });

  it('a detached signature made offline and attached by the server', () => {
    const { manifest } = makeRelease();
    const adminPem = exportPrivateKey(admin.privateKey);
    const detached = signDetached(manifest, adminPem);
    const both = TrustedKeys.of(server.publicKey, admin.publicKey);
    const envelope = attachSignature(sign(manifest, server.privateKey), detached, both, now);
    expect(envelope.signatures.map((s) => s.keyId).sort()).toEqual([server.keyId, admin.keyId].sort());
    expect(verifyRelease(envelope, { trustedKeys: both, now, threshold: 2 }).keyIds).toEqual([server.keyId, admin.keyId].sort());
  });
});

describe('verifyRelease refuses', () => {
  it('a manifest whose body was changed after signing (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const release = signed();
    release.signed.variants[0]!.file.sha256 = 'f'.repeat(64);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('a manifest whose expiry was pushed out after signing (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const release = signed();
    release.signed.expiresAt += 365 * DAY;
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now: T0 + 31 * DAY }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('a signature with one flipped bit (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const release = signed();
    release.signatures[0]!.sig = flipSignatureBit(release.signatures[0]!.sig);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('a stranger signature relabelled with a trusted keyId (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const release = sign(makeRelease().manifest, stranger.privateKey);
    release.signatures[0]!.keyId = server.keyId;
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
  });

  it('a trusted key signature over the manifest made for another purpose (FLT_RELEASE_BAD_SIGNATURE)', () => {
    const { manifest } = makeRelease();
    // Bare canonical JSON, as some other tool might sign it, and the same bytes under the rotation context.
    for (const bytes of [canonicalJsonBytes(manifest), signingPayload('key-rotation', manifest)]) {
      const release = { signed: manifest, signatures: [{ keyId: server.keyId, sig: ed25519Sign(null, bytes, server.privateKey).toString('base64') }] };
      expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_BAD_SIGNATURE');
    }
  });

  it('a manifest signed only by an unknown key (FLT_RELEASE_UNKNOWN_KEY)', () => {
    const release = sign(makeRelease().manifest, stranger.privateKey);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_UNKNOWN_KEY');
  });

  it('a manifest signed by a revoked key (FLT_RELEASE_KEY_REVOKED)', () => {
    const release = signed();
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted.revoke(server.keyId), now }))).toBe('FLT_RELEASE_KEY_REVOKED');
  });

  it('a manifest signed by a key past its notAfter (FLT_RELEASE_KEY_REVOKED)', () => {
    const release = signed();
    const [entry] = trusted.entries();
    const retired = TrustedKeys.from([{ ...entry!, notAfter: now - 1 }]);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: retired, now }))).toBe('FLT_RELEASE_KEY_REVOKED');
  });

  it('one key signing twice when two keys are required (FLT_RELEASE_UNKNOWN_KEY)', () => {
    const release = signed();
    release.signatures.push({ ...release.signatures[0]! });
    expect(verifyRelease(release, { trustedKeys: trusted, now }).keyIds).toEqual([server.keyId]);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now, threshold: 2 }))).toBe('FLT_RELEASE_UNKNOWN_KEY');
  });

  it('an expired manifest (FLT_RELEASE_EXPIRED)', () => {
    const release = signed();
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now: release.signed.expiresAt }))).toBe('FLT_RELEASE_EXPIRED');
    expect(verifyRelease(release, { trustedKeys: trusted, now: release.signed.expiresAt - 1 }).manifest).toBeDefined();
  });

  it('a replayed older manifest (FLT_RELEASE_ROLLBACK)', () => {
    const old = sign(makeRelease({ releaseCounter: 4, version: '1.1.0' }).manifest, server.privateKey);
    expect(codeOf(() => verifyRelease(old, { trustedKeys: trusted, now, lastAcceptedCounter: 5 }))).toBe('FLT_RELEASE_ROLLBACK');
  });

  it('the same counter with different content (FLT_RELEASE_ROLLBACK)', () => {
    const accepted = verifyRelease(signed(), { trustedKeys: trusted, now });
    const rival = sign(makeRelease({ version: '1.2.0-evil' }).manifest, server.privateKey);
    expect(codeOf(() => verifyRelease(rival, { trustedKeys: trusted, now, lastAcceptedCounter: 5, lastAcceptedDigest: accepted.digest }))).toBe(
      'FLT_RELEASE_ROLLBACK',
    );
  });

  it('the same counter when the accepted digest is not known (FLT_RELEASE_ROLLBACK)', () => {
    expect(codeOf(() => verifyRelease(signed(), { trustedKeys: trusted, now, lastAcceptedCounter: 5 }))).toBe('FLT_RELEASE_ROLLBACK');
  });

  it('a correctly signed manifest for another model than the one asked for (FLT_RELEASE_MIX_AND_MATCH)', () => {
    const other = sign(makeRelease({ model: 'faces' }).manifest, server.privateKey);
    expect(codeOf(() => verifyRelease(other, { trustedKeys: trusted, now, expect: { model: 'digits' } }))).toBe('FLT_RELEASE_MIX_AND_MATCH');
    expect(codeOf(() => verifyRelease(signed(), { trustedKeys: trusted, now, expect: { model: 'digits', version: '9.9.9' } }))).toBe(
      'FLT_RELEASE_MIX_AND_MATCH',
    );
  });

  it.each([
    ['an extra field in the manifest', (r: SignedRelease) => Object.assign(r.signed, { debug: true })],
    ['an extra field on the envelope', (r: SignedRelease) => Object.assign(r, { note: 'x' })],
    ['an unknown schema version', (r: SignedRelease) => Object.assign(r.signed, { schema: 2 })],
    ['a fractional release counter', (r: SignedRelease) => Object.assign(r.signed, { releaseCounter: 5.5 })],
    ['an uppercase sha256', (r: SignedRelease) => Object.assign(r.signed.variants[0]!.file, { sha256: 'A'.repeat(64) })],
    ['a file name with a path', (r: SignedRelease) => Object.assign(r.signed.variants[0]!.file, { name: '../../etc/passwd' })],
    ['an unknown format', (r: SignedRelease) => Object.assign(r.signed.variants[0]!, { format: 'tflite' })],
    ['a duplicate variant id', (r: SignedRelease) => Object.assign(r.signed.variants[1]!, { id: r.signed.variants[0]!.id })],
    ['a tensorrt-plan without its TensorRT version', (r: SignedRelease) => delete r.signed.variants[0]!.constraints.tensorrtVersion],
    ['one file name listed with two contents', (r: SignedRelease) => Object.assign(r.signed.variants[1]!.file, { name: r.signed.variants[0]!.file.name })],
    ['a tensorrt-plan that claims to run on cpu', (r: SignedRelease) => Object.assign(r.signed.variants[0]!.constraints, { executionProvider: 'cpu' })],
    ['an exact compute capability below the minimum', (r: SignedRelease) => Object.assign(r.signed.variants[0]!.constraints, { minComputeCapability: '9.0' })],
    ['an expiry before issue', (r: SignedRelease) => Object.assign(r.signed, { expiresAt: r.signed.issuedAt })],
    ['no signatures', (r: SignedRelease) => Object.assign(r, { signatures: [] })],
    ['a truncated signature', (r: SignedRelease) => Object.assign(r.signatures[0]!, { sig: r.signatures[0]!.sig.slice(4) })],
  ])('%s (FLT_RELEASE_MANIFEST_INVALID)', (_name, mutate) => {
    const release = signed();
    mutate(release);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_MANIFEST_INVALID');
  });

  it.each([null, 'manifest', 42, [], {}, { signed: () => 1, signatures: [] }])('a non-envelope value %j (FLT_RELEASE_MANIFEST_INVALID)', (value) => {
    expect(codeOf(() => verifyRelease(value, { trustedKeys: trusted, now }))).toBe('FLT_RELEASE_MANIFEST_INVALID');
  });
});

describe('attachSignature refuses', () => {
  it('a detached signature that does not verify, so the server never stores it', () => {
    const { manifest } = makeRelease();
    const detached = signDetached(manifest, admin.privateKey);
    const both = TrustedKeys.of(server.publicKey, admin.publicKey);
    const other = makeRelease().manifest;
    expect(codeOf(() => attachSignature(other, detached, both, now))).toBe('FLT_RELEASE_BAD_SIGNATURE');
    expect(codeOf(() => attachSignature(manifest, detached, trusted, now))).toBe('FLT_RELEASE_UNKNOWN_KEY');
  });

  it('to sign an invalid manifest at all', () => {
    const { manifest } = makeRelease({ releaseCounter: 0 });
    expect(codeOf(() => signDetached(manifest, server.privateKey))).toBe('FLT_RELEASE_MANIFEST_INVALID');
  });
});

describe('verifyRelease refusals say what was wrong', () => {
  function refusal(fn: () => unknown): FlotillaError {
    try {
      fn();
    } catch (err) {
      if (err instanceof FlotillaError) return err;
      throw err;
    }
    throw new Error('expected a refusal');
  }

  it('naming the model or version it got and the one expected', () => {
    const release = signed();
    const { model, version } = release.signed;
    const wrongModel = refusal(() => verifyRelease(release, { trustedKeys: trusted, now, expect: { model: 'faces' } }));
    expect(wrongModel.message).toBe(`manifest is for model ${model}, expected faces`);
    expect(wrongModel.details).toEqual({ model, expected: 'faces' });
    const wrongVersion = refusal(() => verifyRelease(release, { trustedKeys: trusted, now, expect: { model, version: '9.9.9' } }));
    expect(wrongVersion.message).toBe(`manifest is for version ${version}, expected 9.9.9`);
    expect(wrongVersion.details).toEqual({ version, expected: '9.9.9' });
    expect(verifyRelease(release, { trustedKeys: trusted, now, expect: { model, version } }).manifest.version).toBe(version);
    expect(verifyRelease(release, { trustedKeys: trusted, now, expect: { version } }).manifest.model).toBe(model);
  });

  it('naming the expiry instant and the clock it was checked against', () => {
    const release = signed();
    const at = release.signed.expiresAt;
    const err = refusal(() => verifyRelease(release, { trustedKeys: trusted, now: at + 5 }));
    expect(err.code).toBe('FLT_RELEASE_EXPIRED');
    expect(err.message).toBe(`release ${release.signed.model}@${release.signed.version} expired at ${new Date(at).toISOString()}`);
    expect(err.details).toEqual({ expiresAt: at, now: at + 5 });
  });

  it('naming the counters and digests of a rollback', () => {
    const release = signed();
    const lower = refusal(() => verifyRelease(release, { trustedKeys: trusted, now, lastAcceptedCounter: 6 }));
    expect(lower.message).toBe('release counter 5 is lower than 6 already accepted');
    expect(lower.details).toEqual({ releaseCounter: 5, lastAcceptedCounter: 6 });
    const digest = manifestDigest(release.signed);
    const same = refusal(() => verifyRelease(release, { trustedKeys: trusted, now, lastAcceptedCounter: 5, lastAcceptedDigest: 'f'.repeat(64) }));
    expect(same.message).toBe('release counter 5 was already accepted with different content');
    expect(same.details).toEqual({ releaseCounter: 5, digest, lastAcceptedDigest: 'f'.repeat(64) });
    const unknown = refusal(() => verifyRelease(release, { trustedKeys: trusted, now, lastAcceptedCounter: 5 }));
    expect(unknown.details).toEqual({ releaseCounter: 5, digest, lastAcceptedDigest: null });
  });

  it('checking the signature before anything the signer vouches for', () => {
    const release = sign(makeRelease({ model: 'faces' }).manifest, stranger.privateKey);
    expect(codeOf(() => verifyRelease(release, { trustedKeys: trusted, now: release.signed.expiresAt + 1, expect: { model: 'digits' } }))).toBe(
      'FLT_RELEASE_UNKNOWN_KEY',
    );
  });

  it('naming the signed release as what is not plain data', () => {
    expect(() => verifyRelease({ signed: () => 1, signatures: [] }, { trustedKeys: trusted, now })).toThrow('signed release is not plain data');
  });

  it('leaving the caller envelope untouched and returning a copy', () => {
    const release = signed();
    const before = JSON.stringify(release);
    const { manifest, digest } = verifyRelease(release, { trustedKeys: trusted, now });
    expect(JSON.stringify(release)).toBe(before);
    expect(manifest).not.toBe(release.signed);
    expect(digest).toBe(manifestDigest(release.signed));
  });
});

