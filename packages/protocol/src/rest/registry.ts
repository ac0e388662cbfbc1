import { Type, type Static } from 'typebox';
import { DEVICE_ID_PATTERN } from '../ids.ts';
import { Name, Version, strict } from '../messages/common.ts';
import { ExecutionProvider } from '../messages/inventory.ts';
import { DriftSummary } from '../messages/drift.ts';

/**
 * REST shapes of the model registry (server/src/http/routes/models.ts, artifacts.ts, keys.ts).
 *
 * Parts owned by `@flotilla/release` (variant constraints, manifests, signatures, trusted keys,
 * rotations) appear here as `Type.Unknown()`: this package cannot depend on release, and restating
 * those schemas would give them two sources. The server validates each of those parts with the
 * release package's own schema; their TypeScript types come from `@flotilla/release`.
 */

const ShortText = (max: number) => Type.String({ maxLength: max });
const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });
export const RegistryTags = Type.Array(Tag, { maxItems: 32, uniqueItems: true });

export const Sha256Param = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const TensorDtype = Type.Union(
  ['float32', 'float16', 'int8', 'uint8', 'int32', 'int64', 'bool'].map((d) => Type.Literal(d)),
);

/** One tensor a model takes or gives; shape uses -1 for a dynamic dimension (usually the batch). */
export const TensorSignature = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$' }),
    dtype: TensorDtype,
    shape: Type.Array(Type.Integer({ minimum: -1, maximum: 1_000_000_000 }), { maxItems: 8 }),
    range: Type.Optional(Type.Array(Type.Number(), { minItems: 2, maxItems: 2 })),
    description: Type.Optional(ShortText(256)),
  },
  strict,
);

/** Golden data: row-major numbers. Bounded so one version's metadata stays well under a few MiB. */
export const GoldenTensor = Type.Object(
  {
    dtype: TensorDtype,
    shape: Type.Array(Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), { maxItems: 8 }),
    data: Type.Array(Type.Number(), { maxItems: 65_536 }),
  },
  strict,
);

const TensorMap = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), GoldenTensor, { minProperties: 1, maxProperties: 16 });

export const GoldenVectors = Type.Object(
  {
    inputs: TensorMap,
    outputs: TensorMap,
    /** Largest absolute difference a correct build may show against `outputs`. */
    tolerance: Type.Number({ minimum: 0, maximum: 1000 }),
  },
  strict,
);

/** What a version says about itself. Fixed once the version is published. */
export const VersionMetadata = Type.Object(
  {
    description: Type.Optional(ShortText(2048)),
    inputs: Type.Array(TensorSignature, { minItems: 1, maxItems: 32 }),
    outputs: Type.Array(TensorSignature, { minItems: 1, maxItems: 32 }),
    /** Class labels, index-aligned with the last output dimension; null where classes mean nothing. */
    labels: Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 128 }), { maxItems: 4096 }), Type.Null()])),
    golden: Type.Optional(GoldenVectors),
    /** Evaluation figures, e.g. `{ accuracy: 0.97 }`. */
    metrics: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Type.Number(), { maxProperties: 64 })),
    tags: Type.Optional(RegistryTags),
    /** What the version's evaluation data looks like to drift monitoring (docs/registry.md "Drift"). */
    driftReference: Type.Optional(DriftSummary),
  },
  strict,
);
export type VersionMetadata = Static<typeof VersionMetadata>;

export const VersionState = Type.Union([Type.Literal('draft'), Type.Literal('awaiting-signature'), Type.Literal('published')]);
export type VersionState = Static<typeof VersionState>;

export const ModelNameParams = Type.Object({ name: Name }, strict);
export const VersionParams = Type.Object({ name: Name, version: Version }, strict);
export const VariantParams = Type.Object({ name: Name, version: Version, variantId: Name }, strict);
export const ArtifactParams = Type.Object({ sha256: Sha256Param }, strict);

/** POST /v1/models */
export const CreateModelRequest = Type.Object(
  { name: Name, description: Type.Optional(ShortText(2048)), tags: Type.Optional(RegistryTags) },
  strict,
);
export type CreateModelRequest = Static<typeof CreateModelRequest>;

/** PATCH /v1/models/:name (model-level facts stay editable; versions do not). */
export const UpdateModelRequest = Type.Object(
  { description: Type.Optional(ShortText(2048)), tags: Type.Optional(RegistryTags) },
  strict,
);

export const ModelView = Type.Object(
  {
    name: Name,
    description: Type.String(),
    tags: RegistryTags,
    versions: Type.Integer({ minimum: 0 }),
    latestPublished: Type.Union([Version, Type.Null()]),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
  },
  strict,
);
export type ModelView = Static<typeof ModelView>;
export const ModelList = Type.Object({ items: Type.Array(ModelView) }, strict);

/** POST /v1/models/:name/versions */
export const CreateVersionRequest = Type.Object({ version: Version, metadata: VersionMetadata }, strict);
export type CreateVersionRequest = Static<typeof CreateVersionRequest>;
/** PATCH /v1/models/:name/versions/:version (draft only) */
export const UpdateVersionRequest = Type.Object({ metadata: VersionMetadata }, strict);

export const VariantFormat = Type.Union([Type.Literal('onnx'), Type.Literal('tensorrt-plan')]);
export const VariantPrecision = Type.Union([Type.Literal('fp32'), Type.Literal('fp16'), Type.Literal('int8')]);

/** POST /v1/models/:name/versions/:version/variants */
export const CreateVariantRequest = Type.Object(
  {
    id: Name,
    format: VariantFormat,
    precision: VariantPrecision,
    /** `@flotilla/release` VariantConstraints: arch, executionProvider, (min)computeCapability, tensorrtVersion, jetpackVersion. */
    constraints: Type.Unknown(),
    /** Bare file name the device stores the artifact under; default `<id>.onnx` or `<id>.plan`. */
    fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' })),
  },
  strict,
);
export type CreateVariantRequest = Static<typeof CreateVariantRequest>;

export const VariantView = Type.Object(
  {
    id: Name,
    format: VariantFormat,
    precision: VariantPrecision,
    constraints: Type.Unknown(),
    fileName: Type.String(),
    /** Null until the artifact is uploaded. */
    sha256: Type.Union([Sha256Param, Type.Null()]),
    length: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    createdAt: Type.Integer(),
  },
  strict,
);
export type VariantView = Static<typeof VariantView>;

export const ManifestSummary = Type.Object(
  {
    releaseCounter: Type.Integer({ minimum: 1 }),
    issuedAt: Type.Integer(),
    expiresAt: Type.Integer(),
    /** Hex sha256 of the manifest's canonical JSON (`manifestDigest`). */
    digest: Sha256Param,
    /** Key ids that signed it; empty while awaiting an offline signature. */
    signedBy: Type.Array(Sha256Param),
  },
  strict,
);

export const VersionView = Type.Object(
  {
    model: Name,
    version: Version,
    state: VersionState,
    metadata: VersionMetadata,
    variants: Type.Array(VariantView),
    manifest: Type.Union([ManifestSummary, Type.Null()]),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
    publishedAt: Type.Union([Type.Integer(), Type.Null()]),
  },
  strict,
);
export type VersionView = Static<typeof VersionView>;
export const VersionList = Type.Object({ items: Type.Array(VersionView) }, strict);

/** PUT …/variants/:variantId/artifact answer: what the server measured. */
export const ArtifactUploadResponse = Type.Object(
  { sha256: Sha256Param, length: Type.Integer({ minimum: 1 }), variant: VariantView },
  strict,
);

/** POST …/publish */
export const PublishRequest = Type.Object(
  { signing: Type.Optional(Type.Union([Type.Literal('server'), Type.Literal('offline')], { default: 'server' })) },
  strict,
);
export type PublishRequest = Static<typeof PublishRequest>;

/**
 * Publish answer. `manifest` is the (unsigned) release manifest; `release` the signed envelope
 * `{ signed, signatures }` once published, null while awaiting an offline signature.
 */
export const PublishResponse = Type.Object(
  { state: VersionState, digest: Sha256Param, manifest: Type.Unknown(), release: Type.Unknown() },
  strict,
);

/** POST …/signatures: a detached signature made offline with `signDetached`. */
export const SignatureRequest = Type.Object(
  { keyId: Sha256Param, sig: Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' }) },
  strict,
);

/** POST …/entitlements: lets one device fetch this version's manifest and artifacts. */
export const EntitlementRequest = Type.Object({ deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }) }, strict);

/** The hardware facts variant resolution looks at (a subset of the device inventory). */
export const WhatIfInventory = Type.Object(
  {
    arch: Type.String({ minLength: 1, maxLength: 32 }),
    gpu: Type.Union([
      Type.Object(
        { name: ShortText(256), computeCapability: Type.String({ pattern: '^[0-9]{1,2}\\.[0-9]$' }), memoryBytes: Type.Optional(Type.Integer({ minimum: 0 })) },
        strict,
      ),
      Type.Null(),
    ]),
    tensorrtVersion: Type.Optional(ShortText(32)),
    jetpackVersion: Type.Optional(ShortText(32)),
    executionProviders: Type.Array(ExecutionProvider, { maxItems: 8, uniqueItems: true }),
  },
  strict,
);
export type WhatIfInventory = Static<typeof WhatIfInventory>;

export const ResolveQuery = Type.Object({ device: Type.String({ pattern: DEVICE_ID_PATTERN }) }, strict);
export const ResolveRequest = Type.Object({ inventory: WhatIfInventory }, strict);

/**
 * Variant resolution answer. `variant` is the manifest entry (release `ReleaseVariant`),
 * `explanation` the release `VariantExplanation`: every candidate with its verdict and reasons,
 * the ranking, the winner and one sentence why.
 */
export const ResolveResponse = Type.Object(
  {
    model: Name,
    version: Version,
    device: Type.Union([Type.String(), Type.Null()]),
    variant: Type.Unknown(),
    provider: ExecutionProvider,
    explanation: Type.Unknown(),
  },
  strict,
);

/** GET /v1/keys: the trusted-keys document (`TrustedKeysDocument` entries) devices pin. */
export const TrustedKeysView = Type.Object(
  {
    keys: Type.Unknown(),
    /** The key this server signs releases with online; null when it has none that is trusted. */
    serverKeyId: Type.Union([Sha256Param, Type.Null()]),
    /** Number of rotation statements applied so far (GET /v1/keys/rotations lists them in order). */
    rotations: Type.Integer({ minimum: 0 }),
  },
  strict,
);

/** POST /v1/keys: trust an offline public key (the server signs the rotation statement). */
export const AddKeyRequest = Type.Object(
  {
    /** Raw base64 (32 bytes) or PEM (SPKI) ed25519 public key. */
    publicKey: Type.String({ minLength: 44, maxLength: 512 }),
    label: Type.Optional(ShortText(128)),
    notBefore: Type.Optional(Type.Integer({ minimum: 0 })),
    notAfter: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);
export type AddKeyRequest = Static<typeof AddKeyRequest>;

/** POST /v1/keys/rotations: a signed `KeyRotation` from `@flotilla/release`. */
export const RotationRequest = Type.Object({ rotation: Type.Unknown() }, strict);

export const RotationList = Type.Object(
  {
    items: Type.Array(
      Type.Object({ seq: Type.Integer({ minimum: 1 }), appliedAt: Type.Integer(), rotation: Type.Unknown() }, strict),
    ),
  },
  strict,
);
export const RotationListQuery = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })) }, strict);
