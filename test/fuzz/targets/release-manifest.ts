import fc from 'fast-check';
import { FlotillaError } from '@flotilla/protocol';
import { TrustedKeys, canonicalJson, generateSigningKeyPair, sign, signDetached, verifyRelease, type ReleaseManifest, type SignedRelease, type VerifyReleaseOptions } from '@flotilla/release';
import { applyMutation, damageBytes, mutation, textDamage, type Json } from '../arbitraries/mutation.ts';
import { FuzzProbe, checkTarget, type RunOptions, type TargetReport } from '../harness/fuzz-report.ts';

/** Every refusal verifyRelease may answer with (docs/release-signing.md, docs/errors.md). */
export const RELEASE_REFUSALS = new Set([
  'FLT_RELEASE_MANIFEST_INVALID',
  'FLT_RELEASE_BAD_SIGNATURE',
  'FLT_RELEASE_UNKNOWN_KEY',
  'FLT_RELEASE_KEY_REVOKED',
  'FLT_RELEASE_EXPIRED',
  'FLT_RELEASE_ROLLBACK',
  'FLT_RELEASE_MIX_AND_MATCH',
]);

const T0 = Date.UTC(2025, 0, 15);
const DAY = 86_400_000;
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/);

/** A valid release manifest: one to four ONNX variants, sometimes a TensorRT plan with its required constraints. */
const validManifest: fc.Arbitrary<ReleaseManifest> = fc
  .record({
    model: name,
    version: fc.stringMatching(/^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}$/),
    releaseCounter: fc.integer({ min: 1, max: 1_000_000 }),
    issuedAt: fc.integer({ min: T0 - 30 * DAY, max: T0 }),
    lifetime: fc.integer({ min: 1, max: 90 * DAY }),
    files: fc.array(fc.record({ sha256: hex64, length: fc.integer({ min: 1, max: 2 ** 40 }), precision: fc.constantFrom('fp32' as const, 'fp16' as const, 'int8' as const) }), { minLength: 1, maxLength: 4 }),
    plan: fc.boolean(),
  })
  .map(({ model, version, releaseCounter, issuedAt, lifetime, files, plan }) => ({
    schema: 1 as const,
    model,
    version,
    releaseCounter,
    issuedAt,
    expiresAt: issuedAt + lifetime,
    variants: files.map((f, i) =>
      plan && i === 0
        ? { id: `v${i}`, file: { name: `m${i}.plan`, sha256: f.sha256, length: f.length }, format: 'tensorrt-plan' as const, precision: f.precision, constraints: { computeCapability: '8.7', tensorrtVersion: '8.6' } }
        : { id: `v${i}`, file: { name: `m${i}.onnx`, sha256: f.sha256, length: f.length }, format: 'onnx' as const, precision: f.precision, constraints: {} },
    ),
  }));

type Input =
  | { kind: 'mutated-envelope'; mutations: Parameters<typeof applyMutation>[1][] }
  | { kind: 'resigned-wrong-key'; mutations: Parameters<typeof applyMutation>[1][]; claimTrustedKeyId: boolean }
  | { kind: 'signature-swap'; other: ReleaseManifest }
  | { kind: 'field-transplant'; other: ReleaseManifest; field: keyof ReleaseManifest }
  | { kind: 'damaged-text'; damage: Parameters<typeof damageBytes>[1] }
  | { kind: 'random-bytes'; bytes: Uint8Array; parse: boolean }
  | { kind: 'json-value'; value: Json }
  | { kind: 'exotic'; which: number };

const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('mutated-envelope' as const), mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('resigned-wrong-key' as const), mutations: fc.array(mutation, { maxLength: 2 }), claimTrustedKeyId: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('signature-swap' as const), other: validManifest }) },
  // A schema-valid edit of one field, signatures kept: the tampering a schema cannot catch.
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('field-transplant' as const),
      other: validManifest,
      field: fc.constantFrom<keyof ReleaseManifest>('model', 'version', 'releaseCounter', 'issuedAt', 'expiresAt', 'variants'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('damaged-text' as const), damage: textDamage }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random-bytes' as const), bytes: fc.uint8Array({ maxLength: 1024 }), parse: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('json-value' as const), value: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json> }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exotic' as const), which: fc.nat() }) },
);

/** What the device knows when it judges: its clock, the counter it last accepted, what it asked for. */
const context = fc.record({
  nowOffset: fc.integer({ min: -2 * DAY, max: 100 * DAY }),
  lastCounterDelta: fc.option(fc.integer({ min: -3, max: 3 })),
  sameDigest: fc.boolean(),
  expectModel: fc.boolean(),
  expectVersion: fc.boolean(),
});

/** Values no JSON parser produces, which an in-process caller could still hand over. */
function exotic(which: number, good: SignedRelease): unknown {
  const getterBomb = { ...good };
  Object.defineProperty(getterBomb, 'signed', { enumerable: true, get: () => { throw new Error('getter'); } });
  const all: unknown[] = [
    undefined,
    () => good,
    Symbol('release'),
    new Map([['signed', good.signed]]),
    new Proxy(good, {}),
    getterBomb,
    Object.assign(Object.create(null) as object, good),
    Buffer.from(JSON.stringify(good)),
    JSON.stringify(good),
    [good],
    { ...good, signed: new Date(T0) },
    10n,
  ];
  return all[which % all.length];
}

/**
 * Signed release verification as the agent runs it on what the server sends: every tampered,
 * re-signed, damaged or random input is refused with a typed FLT_RELEASE_ code, and the only thing
 * ever accepted is the manifest the trusted key signed.
 */
export function fuzzReleaseManifest(opts: RunOptions): Promise<TargetReport> {
  const probe = new FuzzProbe();
  const trusted = generateSigningKeyPair();
  const wrong = generateSigningKeyPair();
  const trustedKeys = TrustedKeys.of(trusted.publicKey);

  const property = fc.property(validManifest, input, context, (manifest, inp, ctx) => {
    const good = sign(manifest, trusted.privateKey);
    let candidate: unknown;
    switch (inp.kind) {
      case 'mutated-envelope':
        candidate = inp.mutations.reduce(applyMutation, good as unknown as Json);
        break;
      case 'resigned-wrong-key': {
        const changed = inp.mutations.reduce(applyMutation, manifest as unknown as Json) as unknown as ReleaseManifest;
        let sig;
        try {
          sig = signDetached(changed, wrong.privateKey);
        } catch {
          // The signer refuses an invalid manifest; sign its bytes as a forger would.
          sig = signDetached(manifest, wrong.privateKey);
        }
        candidate = { signed: changed, signatures: [{ keyId: inp.claimTrustedKeyId ? trusted.keyId : sig.keyId, sig: sig.sig }] };
        break;
      }
      case 'signature-swap':
        candidate = { signed: inp.other, signatures: good.signatures };
        break;
      case 'field-transplant':
        candidate = { signed: { ...manifest, [inp.field]: inp.other[inp.field] }, signatures: good.signatures };
        break;
      case 'damaged-text': {
        const text = damageBytes(Buffer.from(JSON.stringify(good)), inp.damage).toString('utf8');
        try {
          candidate = JSON.parse(text);
        } catch {
          candidate = text;
        }
        break;
      }
      case 'random-bytes': {
        const text = Buffer.from(inp.bytes).toString('utf8');
        try {
          candidate = inp.parse ? JSON.parse(text) : inp.bytes;
        } catch {
          candidate = text;
        }
        break;
      }
      case 'json-value':
        candidate = inp.value;
        break;
      case 'exotic':
        candidate = exotic(inp.which, good);
        break;
    }
    const now = manifest.issuedAt + ctx.nowOffset;
    const verifyOpts: VerifyReleaseOptions = {
      trustedKeys,
      now,
      ...(ctx.lastCounterDelta !== null ? { lastAcceptedCounter: Math.max(1, manifest.releaseCounter + ctx.lastCounterDelta) } : {}),
      ...(ctx.sameDigest ? { lastAcceptedDigest: verifyRelease(good, { trustedKeys, now: manifest.issuedAt }).digest } : {}),
      expect: { ...(ctx.expectModel ? { model: manifest.model } : {}), ...(ctx.expectVersion ? { version: manifest.version } : {}) },
    };
    let accepted;
    try {
      accepted = verifyRelease(candidate, verifyOpts);
    } catch (err) {
      if (!(err instanceof FlotillaError)) throw new Error(`untyped refusal: ${(err as Error)?.stack ?? String(err)}`);
      if (!RELEASE_REFUSALS.has(err.code)) throw new Error(`unexpected refusal code ${err.code}: ${err.message}`);
      probe.tally(`${inp.kind}:${err.code}`);
      return true;
    }
    probe.tally(`${inp.kind}:accepted`);
    // Only the manifest the trusted key signed may come out, and only when its rules hold at `now`.
    if (canonicalJson(accepted.manifest) !== canonicalJson(manifest)) throw new Error('accepted a manifest the trusted key never signed');
    if (now >= manifest.expiresAt) throw new Error('accepted an expired manifest');
    if (verifyOpts.lastAcceptedCounter !== undefined && manifest.releaseCounter < verifyOpts.lastAcceptedCounter) throw new Error('accepted a rollback');
    return true;
  });
  return checkTarget('release-manifest', probe, property, opts);
}
