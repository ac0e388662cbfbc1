import { sign as ed25519Sign, type KeyObject } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { FlotillaError, Timestamp, strict } from '@flotilla/protocol';
import { KeyId, PublicKeyBase64, ReleaseSignature, checkSchema, detachedCopy } from './manifest-schema.ts';
import { exportPublicKey, importPublicKey, keyIdOf, toPrivateKey, type PrivateKeyInput } from './keys.ts';
import { signingPayload } from './signing-payload.ts';
import { checkSignatures } from './signature-check.ts';
import type { TrustedKeyEntry, TrustedKeys } from './trusted-keys.ts';

export const RotationKey = Type.Object(
  {
    keyId: KeyId,
    publicKey: PublicKeyBase64,
    notBefore: Type.Optional(Timestamp),
    notAfter: Type.Optional(Timestamp),
    label: Type.Optional(Type.String({ maxLength: 128 })),
  },
  strict,
);
export type RotationKey = Static<typeof RotationKey>;

export const KeyRotationStatement = Type.Object(
  {
    type: Type.Literal('flotilla-key-rotation'),
    issuedAt: Timestamp,
    add: Type.Array(RotationKey, { maxItems: 8 }),
    retire: Type.Array(KeyId, { maxItems: 16, uniqueItems: true }),
  },
  strict,
);
export type KeyRotationStatement = Static<typeof KeyRotationStatement>;

export const KeyRotation = Type.Object(
  {
    signed: KeyRotationStatement,
    signatures: Type.Array(ReleaseSignature, { minItems: 1, maxItems: 16 }),
  },
  strict,
);
export type KeyRotation = Static<typeof KeyRotation>;

export interface NewRotationKey {
  publicKey: KeyObject | string;
  notBefore?: number;
  notAfter?: number;
  label?: string;
}

/**
 * Writes and signs a rotation statement. The usual rotation is signed by the outgoing key: it adds
 * the successor and retires itself in one statement.
 */
export function createRotation(
  change: { issuedAt: number; add?: NewRotationKey[]; retire?: string[] },
  signers: PrivateKeyInput | PrivateKeyInput[],
): KeyRotation {
  const add: RotationKey[] = (change.add ?? []).map((k) => {
    const pub = typeof k.publicKey === 'string' ? importPublicKey(k.publicKey) : k.publicKey;
    const entry: RotationKey = { keyId: keyIdOf(pub), publicKey: exportPublicKey(pub) };
    if (k.notBefore !== undefined) entry.notBefore = k.notBefore;
    if (k.notAfter !== undefined) entry.notAfter = k.notAfter;
    if (k.label !== undefined) entry.label = k.label;
    return entry;
  });
  const signed: KeyRotationStatement = { type: 'flotilla-key-rotation', issuedAt: change.issuedAt, add, retire: [...(change.retire ?? [])] };
  const statement = parseRotationStatement(signed);
  const payload = signingPayload('key-rotation', statement);
  const signatures = (Array.isArray(signers) ? signers : [signers]).map((input) => {
    const key = toPrivateKey(input);
    return { keyId: keyIdOf(key), sig: ed25519Sign(null, payload, key).toString('base64') };
  });
  return { signed: statement, signatures };
}

function rotationInvalid(reason: string): never {
  throw new FlotillaError('FLT_RELEASE_ROTATION_INVALID', `key rotation is invalid: ${reason}`);
}

function parseRotationStatement(value: unknown): KeyRotationStatement {
  const statement = checkSchema<KeyRotationStatement>(KeyRotationStatement, value, 'FLT_RELEASE_ROTATION_INVALID', 'key rotation');
  if (statement.add.length === 0 && statement.retire.length === 0) rotationInvalid('it neither adds nor retires a key');
  const added = new Set<string>();
  for (const key of statement.add) {
    if (added.has(key.keyId)) rotationInvalid(`key ${key.keyId} is added twice`);
    added.add(key.keyId);
    if (keyIdOf(importPublicKey(key.publicKey)) !== key.keyId) rotationInvalid(`keyId ${key.keyId} is not the sha256 of its public key`);
    if (statement.retire.includes(key.keyId)) rotationInvalid(`key ${key.keyId} is both added and retired`);
    if (key.notBefore !== undefined && key.notAfter !== undefined && key.notAfter <= key.notBefore) {
      rotationInvalid(`key ${key.keyId} has notAfter before notBefore`);
    }
  }
  return statement;
}

export interface ApplyRotationOptions {
  now: number;
  /** Distinct currently trusted keys that must sign the rotation (default 1). */
  threshold?: number;
}

/**
 * Verifies a rotation against the current set and returns the new set; the current set is left as
 * it was. Refused: a malformed statement, one signed by an unknown, retired or invalid key, one that
 * re-adds a retired key (a replayed old rotation), and one that would leave no usable key.
 * Adding a key that is already trusted leaves its entry unchanged, so replaying a rotation that was
 * already applied changes nothing.
 */
export function applyRotation(trustedKeys: TrustedKeys, rotation: unknown, opts: ApplyRotationOptions): TrustedKeys {
  const copy = detachedCopy(rotation, 'FLT_RELEASE_ROTATION_INVALID', 'key rotation');
  const envelope = checkSchema<KeyRotation>(KeyRotation, copy, 'FLT_RELEASE_ROTATION_INVALID', 'key rotation');
  const statement = parseRotationStatement(envelope.signed);
  checkSignatures('key-rotation', statement, envelope.signatures, trustedKeys, opts.now, opts.threshold ?? 1);

  let next = trustedKeys;
  for (const key of statement.add) {
    const existing = next.get(key.keyId);
    if (existing?.revoked) rotationInvalid(`key ${key.keyId} was retired and cannot be trusted again`);
    if (existing) continue;
    const entry: TrustedKeyEntry = { ...key };
    next = next.with(entry);
  }
  for (const keyId of statement.retire) next = next.revoke(keyId);
  // A key that becomes valid later still counts: a rotation may schedule its successor.
  const remaining = next.entries().filter((e) => !e.revoked && (e.notAfter === undefined || e.notAfter > opts.now));
  if (remaining.length === 0) rotationInvalid('it would leave no usable signing key');
  return next;
}
