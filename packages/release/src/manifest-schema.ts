import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import type { Validator } from 'typebox/compile';
import { ExecutionProvider, FlotillaError, Name, Timestamp, Version, strict } from '@flotilla/protocol';
import type { ErrorCode } from '@flotilla/protocol';

/** Lowercase hex only, so two spellings of one digest can never compare unequal. */
export const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const KeyId = Sha256Hex;
/** A bare file name: no separators, no leading dot, so it can never escape the device's model folder. */
export const ArtifactFileName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
/** GPU compute capability as the protocol's inventory writes it, e.g. "8.7". */
export const ComputeCapability = Type.String({ pattern: '^[0-9]{1,2}\\.[0-9]$' });
/** Dotted numeric version, 1 to 4 parts, e.g. "6", "8.6", "10.3.0.26". */
export const DottedVersion = Type.String({ maxLength: 32, pattern: '^[0-9]{1,4}(\\.[0-9]{1,6}){0,3}$' });
/** Base64 of a 64-byte ed25519 signature. */
export const SignatureBase64 = Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' });
/** Base64 of a 32-byte raw ed25519 public key. */
export const PublicKeyBase64 = Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' });

export const ArtifactFormat = Type.Union([Type.Literal('onnx'), Type.Literal('tensorrt-plan')]);
export type ArtifactFormat = Static<typeof ArtifactFormat>;
export const Precision = Type.Union([Type.Literal('fp32'), Type.Literal('fp16'), Type.Literal('int8')]);
export type Precision = Static<typeof Precision>;

export const ArtifactFile = Type.Object(
  {
    name: ArtifactFileName,
    sha256: Sha256Hex,
    length: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  },
  strict,
);
export type ArtifactFile = Static<typeof ArtifactFile>;

export const VariantConstraints = Type.Object(
  {
    arch: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 8, uniqueItems: true })),
    executionProvider: Type.Optional(ExecutionProvider),
    minComputeCapability: Type.Optional(ComputeCapability),
    /** Exact match: a TensorRT plan only runs on the compute capability it was built for. */
    computeCapability: Type.Optional(ComputeCapability),
    tensorrtVersion: Type.Optional(DottedVersion),
    jetpackVersion: Type.Optional(DottedVersion),
  },
  strict,
);
export type VariantConstraints = Static<typeof VariantConstraints>;

export const ReleaseVariant = Type.Object(
  {
    id: Name,
    file: ArtifactFile,
    format: ArtifactFormat,
    precision: Precision,
    constraints: VariantConstraints,
  },
  strict,
);
export type ReleaseVariant = Static<typeof ReleaseVariant>;

/** One published model version. Times are epoch milliseconds, like every timestamp in the protocol. */
export const ReleaseManifest = Type.Object(
  {
    schema: Type.Literal(1),
    model: Name,
    version: Version,
    /** Per model; only goes up. Devices refuse anything lower than what they already accepted. */
    releaseCounter: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    issuedAt: Timestamp,
    expiresAt: Timestamp,
    variants: Type.Array(ReleaseVariant, { minItems: 1, maxItems: 64 }),
    manifestId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  strict,
);
export type ReleaseManifest = Static<typeof ReleaseManifest>;

export const ReleaseSignature = Type.Object({ keyId: KeyId, sig: SignatureBase64 }, strict);
export type ReleaseSignature = Static<typeof ReleaseSignature>;

export const SignedRelease = Type.Object(
  {
    signed: ReleaseManifest,
    signatures: Type.Array(ReleaseSignature, { minItems: 1, maxItems: 16 }),
  },
  strict,
);
export type SignedRelease = Static<typeof SignedRelease>;

const validators = new WeakMap<TSchema, Validator>();

/**
 * Validates `value` against `schema` and throws `code` with the first failing path. Compiled
 * validators are cached per schema object.
 */
export function checkSchema<T>(schema: TSchema, value: unknown, code: ErrorCode, what: string): T {
  let validator = validators.get(schema);
  if (!validator) {
    validator = Compile(schema);
    validators.set(schema, validator);
  }
  if (!validator.Check(value)) {
    const first = validator.Errors(value)[0];
    const path = first?.instancePath || '/';
    throw new FlotillaError(code, `${what} is invalid at ${path}: ${first?.message ?? 'schema mismatch'}`, { path });
  }
  return value as T;
}

function invalid(reason: string, path: string): never {
  throw new FlotillaError('FLT_RELEASE_MANIFEST_INVALID', `release manifest is invalid at ${path}: ${reason}`, { path });
}

function ccValue(cc: string): number {
  const [major, minor] = cc.split('.').map(Number);
  return (major ?? 0) * 10 + (minor ?? 0);
}

/**
 * Rules a schema cannot express. A TensorRT plan must name the exact compute capability and TensorRT
 * version it was built with, since it runs nowhere else; without them it would be offered to
 * devices that cannot load it.
 */
function checkManifestRules(manifest: ReleaseManifest): void {
  if (manifest.expiresAt <= manifest.issuedAt) invalid('expiresAt must be after issuedAt', '/expiresAt');
  const ids = new Set<string>();
  const files = new Map<string, ArtifactFile>();
  manifest.variants.forEach((variant, i) => {
    const at = `/variants/${i}`;
    if (ids.has(variant.id)) invalid(`duplicate variant id ${variant.id}`, `${at}/id`);
    ids.add(variant.id);
    const seen = files.get(variant.file.name);
    if (seen && (seen.sha256 !== variant.file.sha256 || seen.length !== variant.file.length)) {
      invalid(`file ${variant.file.name} is listed with two different contents`, `${at}/file`);
    }
    files.set(variant.file.name, variant.file);
    const c = variant.constraints;
    if (variant.format === 'tensorrt-plan') {
      if (c.computeCapability === undefined) invalid('a tensorrt-plan must name its exact computeCapability', `${at}/constraints`);
      if (c.tensorrtVersion === undefined) invalid('a tensorrt-plan must name its tensorrtVersion', `${at}/constraints`);
      if (c.executionProvider === 'cpu' || c.executionProvider === 'cuda') {
        invalid(`a tensorrt-plan cannot run on the ${c.executionProvider} provider`, `${at}/constraints/executionProvider`);
      }
    }
    if (c.computeCapability !== undefined && c.minComputeCapability !== undefined && ccValue(c.computeCapability) < ccValue(c.minComputeCapability)) {
      invalid('computeCapability is below minComputeCapability, so no device could match', `${at}/constraints`);
    }
  });
}

/** Validates an untrusted value as a release manifest (schema and cross-field rules). */
export function parseManifest(value: unknown): ReleaseManifest {
  const manifest = checkSchema<ReleaseManifest>(ReleaseManifest, value, 'FLT_RELEASE_MANIFEST_INVALID', 'release manifest');
  checkManifestRules(manifest);
  return manifest;
}

/**
 * A private deep copy of untrusted input, taken before validation, so nothing the caller still
 * holds (or a getter) can change the value between checking and use.
 */
export function detachedCopy(value: unknown, code: ErrorCode, what: string): unknown {
  try {
    return structuredClone(value);
  } catch {
    throw new FlotillaError(code, `${what} is not plain data`);
  }
}

/** Validates an untrusted value as a signed release envelope. Does not check signatures. */
export function parseSignedRelease(value: unknown): SignedRelease {
  const envelope = checkSchema<SignedRelease>(SignedRelease, value, 'FLT_RELEASE_MANIFEST_INVALID', 'signed release');
  checkManifestRules(envelope.signed);
  return envelope;
}
