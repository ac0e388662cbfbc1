import { randomBytes } from 'node:crypto';
import { FlotillaError, type VersionState } from '@flotilla/protocol';
import { attachSignature, manifestDigest, parseManifest, signDetached, type ReleaseManifest, type ReleaseSignature, type SignedRelease } from '@flotilla/release';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { ModelRegistry, VersionRow } from './model-registry.ts';
import type { KeyTrust } from './key-trust.ts';
import type { ServerSigningKey } from './signing-key.ts';

export interface PublishResult {
  state: VersionState;
  digest: string;
  manifest: ReleaseManifest;
  /** The signed envelope once published; null while waiting for an offline signature. */
  release: SignedRelease | null;
}

export interface ReleasePublisherDeps {
  db: Db;
  audit: AuditLog;
  now: () => number;
  registry: ModelRegistry;
  keys: KeyTrust;
  serverKey: ServerSigningKey;
  manifestTtlMs: number;
}

/**
 * Turns a draft version into a signed release. The manifest is built once, at publish time, from the
 * variants' measured artifacts, and is never rebuilt: the release counter it carries is reserved for
 * this version, and a different manifest would need a new version.
 */
export class ReleasePublisher {
  readonly #d: ReleasePublisherDeps;

  constructor(deps: ReleasePublisherDeps) {
    this.#d = deps;
  }

  publish(actor: AuditActor, model: string, version: string, signing: 'server' | 'offline'): PublishResult {
    const { db, registry, keys, serverKey, now } = this.#d;
    return db.transaction((): PublishResult => {
      registry.requireDraft(model, version);
      const variants = registry.variants(model, version);
      if (variants.length === 0) throw new FlotillaError('FLT_REGISTRY_NOT_PUBLISHABLE', `${model}@${version} has no variants`);
      const missing = variants.filter((v) => v.sha256 === null || v.length === null).map((v) => v.id);
      if (missing.length > 0) {
        throw new FlotillaError('FLT_REGISTRY_NOT_PUBLISHABLE', `variants without an uploaded artifact: ${missing.join(', ')}`, { missing });
      }
      const previous = db.prepare('SELECT MAX(release_counter) AS c FROM model_versions WHERE model = ?').get(model) as { c: number | null };
      const issuedAt = now();
      const manifest = parseManifest({
        schema: 1,
        model,
        version,
        releaseCounter: (previous.c ?? 0) + 1,
        issuedAt,
        expiresAt: issuedAt + this.#d.manifestTtlMs,
        manifestId: `rel_${randomBytes(12).toString('base64url')}`,
        variants: variants.map((v) => ({
          id: v.id,
          file: { name: v.file_name, sha256: v.sha256!, length: v.length! },
          format: v.format,
          precision: v.precision,
          constraints: JSON.parse(v.constraints) as object,
        })),
      } satisfies ReleaseManifest);
      const digest = manifestDigest(manifest);

      let release: SignedRelease | null = null;
      if (signing === 'server') {
        if (keys.usableServerKeyId() === null) {
          throw new FlotillaError('FLT_REGISTRY_SERVER_KEY_UNTRUSTED', 'the server key is not trusted to sign; publish with { "signing": "offline" }');
        }
        // attachSignature verifies against the trusted set: the server never stores a signature its devices would refuse.
        release = attachSignature(manifest, signDetached(manifest, serverKey.privateKey), keys.current(), issuedAt);
      }
      const state: VersionState = release ? 'published' : 'awaiting-signature';
      db.prepare(
        `UPDATE model_versions SET state = ?, release_counter = ?, manifest = ?, manifest_digest = ?, signatures = ?, updated_at = ?, published_at = ?
         WHERE model = ? AND version = ?`,
      ).run(state, manifest.releaseCounter, JSON.stringify(manifest), digest, JSON.stringify(release?.signatures ?? []), issuedAt, release ? issuedAt : null, model, version);
      this.#d.audit.record(actor, 'version.publish', `${model}@${version}`, { signing, releaseCounter: manifest.releaseCounter, digest, state });
      return { state, digest, manifest, release };
    })();
  }

  /** Attaches an offline signature (verified first) and publishes the version. */
  addSignature(actor: AuditActor, model: string, version: string, signature: ReleaseSignature): PublishResult {
    const { db, registry, keys, now } = this.#d;
    return db.transaction((): PublishResult => {
      const row = registry.requireVersion(model, version);
      if (row.state === 'published') {
        throw new FlotillaError('FLT_REGISTRY_IMMUTABLE', `${model}@${version} is already published; a new signature needs a new version`);
      }
      if (row.state !== 'awaiting-signature') {
        throw new FlotillaError('FLT_REGISTRY_NOT_AWAITING_SIGNATURE', `${model}@${version} is ${row.state}; publish it with { "signing": "offline" } first`);
      }
      const manifest = JSON.parse(row.manifest!) as ReleaseManifest;
      const t = now();
      const release = attachSignature(manifest, signature, keys.current(), t);
      db.prepare(`UPDATE model_versions SET state = 'published', signatures = ?, updated_at = ?, published_at = ? WHERE model = ? AND version = ?`).run(
        JSON.stringify(release.signatures),
        t,
        t,
        model,
        version,
      );
      this.#d.audit.record(actor, 'version.sign', `${model}@${version}`, { keyId: signature.keyId, digest: row.manifest_digest });
      return { state: 'published', digest: row.manifest_digest!, manifest, release };
    })();
  }

  /** The signed envelope of a published version. */
  signedRelease(model: string, version: string): { release: SignedRelease; digest: string } {
    const row = this.#d.registry.requireVersion(model, version);
    if (row.state !== 'published') throw new FlotillaError('FLT_REGISTRY_NOT_PUBLISHED', `${model}@${version} is ${row.state}`, { state: row.state });
    return { release: envelopeOf(row), digest: row.manifest_digest! };
  }

  /** The manifest as built at publish time, signed or not: what an offline signer signs. */
  unsignedManifest(model: string, version: string): { manifest: ReleaseManifest; digest: string; state: VersionState } {
    const row = this.#d.registry.requireVersion(model, version);
    if (row.manifest === null) throw new FlotillaError('FLT_REGISTRY_NOT_PUBLISHED', `${model}@${version} is a draft; publish it first`, { state: row.state });
    return { manifest: JSON.parse(row.manifest) as ReleaseManifest, digest: row.manifest_digest!, state: row.state };
  }
}

function envelopeOf(row: VersionRow): SignedRelease {
  return { signed: JSON.parse(row.manifest!) as ReleaseManifest, signatures: JSON.parse(row.signatures) as ReleaseSignature[] };
}
