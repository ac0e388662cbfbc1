import { FlotillaError, type CreateModelRequest, type CreateVariantRequest, type ModelView, type VersionMetadata, type VersionState, type VersionView, type VariantView } from '@flotilla/protocol';
import { VariantConstraints, checkSchema, parseManifest, type ReleaseManifest, type ReleaseSignature, type VariantConstraints as Constraints } from '@flotilla/release';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { StoredArtifact } from '../artifacts/artifact-store.ts';

interface ModelRow {
  name: string;
  description: string;
  tags: string;
  created_at: number;
  updated_at: number;
}

export interface VersionRow {
  model: string;
  version: string;
  state: VersionState;
  metadata: string;
  release_counter: number | null;
  manifest: string | null;
  manifest_digest: string | null;
  signatures: string;
  created_at: number;
  updated_at: number;
  published_at: number | null;
}

export interface VariantRow {
  model: string;
  version: string;
  id: string;
  format: 'onnx' | 'tensorrt-plan';
  precision: 'fp32' | 'fp16' | 'int8';
  constraints: string;
  file_name: string;
  sha256: string | null;
  length: number | null;
  created_at: number;
}

const PLACEHOLDER_SHA = '0'.repeat(64);

function variantView(r: VariantRow): VariantView {
  return {
    id: r.id,
    format: r.format,
    precision: r.precision,
    constraints: JSON.parse(r.constraints) as Constraints,
    fileName: r.file_name,
    sha256: r.sha256,
    length: r.length,
    createdAt: r.created_at,
  };
}

/**
 * Models, versions and variants, and the rule that makes releases trustworthy: a version can change
 * only while it is a draft. Once it is awaiting a signature or published, any change is refused
 * with FLT_REGISTRY_IMMUTABLE. Every change commits with its audit entry.
 */
export class ModelRegistry {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #now: () => number;

  constructor(deps: { db: Db; audit: AuditLog; now: () => number }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#now = deps.now;
  }

  // ---- models

  createModel(actor: AuditActor, req: CreateModelRequest): ModelView {
    this.#db.transaction(() => {
      if (this.#modelRow(req.name)) throw new FlotillaError('FLT_REGISTRY_EXISTS', `model ${req.name} already exists`);
      const now = this.#now();
      this.#db
        .prepare('INSERT INTO models (name, description, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
        .run(req.name, req.description ?? '', JSON.stringify(req.tags ?? []), now, now);
      this.#audit.record(actor, 'model.create', req.name, { tags: req.tags ?? [] });
    })();
    return this.getModel(req.name);
  }

  updateModel(actor: AuditActor, name: string, change: { description?: string; tags?: string[] }): ModelView {
    this.#db.transaction(() => {
      const row = this.#requireModel(name);
      this.#db
        .prepare('UPDATE models SET description = ?, tags = ?, updated_at = ? WHERE name = ?')
        .run(change.description ?? row.description, change.tags ? JSON.stringify(change.tags) : row.tags, this.#now(), name);
      this.#audit.record(actor, 'model.update', name, change);
    })();
    return this.getModel(name);
  }

  getModel(name: string): ModelView {
    return this.#modelView(this.#requireModel(name));
  }

  listModels(): ModelView[] {
    return (this.#db.prepare('SELECT * FROM models ORDER BY name LIMIT 1000').all() as ModelRow[]).map((r) => this.#modelView(r));
  }

  #modelView(r: ModelRow): ModelView {
    const counts = this.#db
      .prepare(`SELECT COUNT(*) AS n, (SELECT version FROM model_versions WHERE model = ? AND state = 'published' ORDER BY release_counter DESC LIMIT 1) AS latest FROM model_versions WHERE model = ?`)
      .get(r.name, r.name) as { n: number; latest: string | null };
    return {
      name: r.name,
      description: r.description,
      tags: JSON.parse(r.tags) as string[],
      versions: counts.n,
      latestPublished: counts.latest,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  #modelRow(name: string): ModelRow | undefined {
    return this.#db.prepare('SELECT * FROM models WHERE name = ?').get(name) as ModelRow | undefined;
  }

  #requireModel(name: string): ModelRow {
    const row = this.#modelRow(name);
    if (!row) throw new FlotillaError('FLT_REGISTRY_MODEL_NOT_FOUND', `no model ${name}`);
    return row;
  }

  // ---- versions

  createVersion(actor: AuditActor, model: string, version: string, metadata: VersionMetadata): VersionView {
    this.#db.transaction(() => {
      this.#requireModel(model);
      if (this.versionRow(model, version)) throw new FlotillaError('FLT_REGISTRY_EXISTS', `version ${model}@${version} already exists`);
      const now = this.#now();
      this.#db
        .prepare(`INSERT INTO model_versions (model, version, state, metadata, created_at, updated_at) VALUES (?, ?, 'draft', ?, ?, ?)`)
        .run(model, version, JSON.stringify(metadata), now, now);
      this.#db.prepare('UPDATE models SET updated_at = ? WHERE name = ?').run(now, model);
      this.#audit.record(actor, 'version.create', `${model}@${version}`);
    })();
    return this.getVersion(model, version);
  }

  updateVersion(actor: AuditActor, model: string, version: string, metadata: VersionMetadata): VersionView {
    this.#db.transaction(() => {
      this.requireDraft(model, version);
      this.#db.prepare('UPDATE model_versions SET metadata = ?, updated_at = ? WHERE model = ? AND version = ?').run(JSON.stringify(metadata), this.#now(), model, version);
      this.#audit.record(actor, 'version.update', `${model}@${version}`);
    })();
    return this.getVersion(model, version);
  }

  deleteVersion(actor: AuditActor, model: string, version: string): void {
    this.#db.transaction(() => {
      this.requireDraft(model, version);
      this.#db.prepare('DELETE FROM model_versions WHERE model = ? AND version = ?').run(model, version);
      this.#audit.record(actor, 'version.delete', `${model}@${version}`);
    })();
  }

  getVersion(model: string, version: string): VersionView {
    return this.#versionView(this.requireVersion(model, version));
  }

  listVersions(model: string): VersionView[] {
    this.#requireModel(model);
    const rows = this.#db.prepare('SELECT * FROM model_versions WHERE model = ? ORDER BY created_at, version LIMIT 1000').all(model) as VersionRow[];
    return rows.map((r) => this.#versionView(r));
  }

  versionRow(model: string, version: string): VersionRow | undefined {
    return this.#db.prepare('SELECT * FROM model_versions WHERE model = ? AND version = ?').get(model, version) as VersionRow | undefined;
  }

  requireVersion(model: string, version: string): VersionRow {
    const row = this.versionRow(model, version);
    if (!row) {
      this.#requireModel(model);
      throw new FlotillaError('FLT_REGISTRY_VERSION_NOT_FOUND', `no version ${model}@${version}`);
    }
    return row;
  }

  /** The version, provided it may still change; FLT_REGISTRY_IMMUTABLE otherwise. */
  requireDraft(model: string, version: string): VersionRow {
    const row = this.requireVersion(model, version);
    if (row.state !== 'draft') {
      throw new FlotillaError('FLT_REGISTRY_IMMUTABLE', `${model}@${version} is ${row.state} and can no longer change; publish a new version instead`, { state: row.state });
    }
    return row;
  }

  #versionView(r: VersionRow): VersionView {
    const manifest = r.manifest ? (JSON.parse(r.manifest) as ReleaseManifest) : null;
    const signatures = JSON.parse(r.signatures) as ReleaseSignature[];
    return {
      model: r.model,
      version: r.version,
      state: r.state,
      metadata: JSON.parse(r.metadata) as VersionMetadata,
      variants: this.variants(r.model, r.version).map(variantView),
      manifest: manifest
        ? { releaseCounter: manifest.releaseCounter, issuedAt: manifest.issuedAt, expiresAt: manifest.expiresAt, digest: r.manifest_digest!, signedBy: signatures.map((s) => s.keyId) }
        : null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      publishedAt: r.published_at,
    };
  }

  // ---- variants

  variants(model: string, version: string): VariantRow[] {
    return this.#db.prepare('SELECT * FROM model_variants WHERE model = ? AND version = ? ORDER BY id').all(model, version) as VariantRow[];
  }

  #variantRow(model: string, version: string, id: string): VariantRow | undefined {
    return this.#db.prepare('SELECT * FROM model_variants WHERE model = ? AND version = ? AND id = ?').get(model, version, id) as VariantRow | undefined;
  }

  requireVariant(model: string, version: string, id: string): VariantRow {
    const row = this.#variantRow(model, version, id);
    if (!row) throw new FlotillaError('FLT_REGISTRY_VARIANT_NOT_FOUND', `no variant ${id} in ${model}@${version}`);
    return row;
  }

  addVariant(actor: AuditActor, model: string, version: string, req: CreateVariantRequest): VariantView {
    const constraints = checkSchema<Constraints>(VariantConstraints, req.constraints, 'FLT_BAD_REQUEST', 'constraints');
    const fileName = req.fileName ?? `${req.id}${req.format === 'onnx' ? '.onnx' : '.plan'}`;
    // The release package owns the cross-field rules (a TensorRT plan names its exact GPU and
    // TensorRT version...): check them now on a stand-in manifest rather than at publish time.
    parseManifest({
      schema: 1, model, version, releaseCounter: 1, issuedAt: 0, expiresAt: 1,
      variants: [{ id: req.id, file: { name: fileName, sha256: PLACEHOLDER_SHA, length: 1 }, format: req.format, precision: req.precision, constraints }],
    });
    this.#db.transaction(() => {
      this.requireDraft(model, version);
      if (this.#variantRow(model, version, req.id)) throw new FlotillaError('FLT_REGISTRY_EXISTS', `variant ${req.id} already exists in ${model}@${version}`);
      if (this.#db.prepare('SELECT 1 FROM model_variants WHERE model = ? AND version = ? AND file_name = ?').get(model, version, fileName)) {
        throw new FlotillaError('FLT_REGISTRY_EXISTS', `another variant of ${model}@${version} already uses the file name ${fileName}`);
      }
      const now = this.#now();
      this.#db
        .prepare('INSERT INTO model_variants (model, version, id, format, precision, constraints, file_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(model, version, req.id, req.format, req.precision, JSON.stringify(constraints), fileName, now);
      this.#db.prepare('UPDATE model_versions SET updated_at = ? WHERE model = ? AND version = ?').run(now, model, version);
      this.#audit.record(actor, 'variant.create', `${model}@${version}/${req.id}`, { format: req.format, precision: req.precision, constraints });
    })();
    return variantView(this.requireVariant(model, version, req.id));
  }

  deleteVariant(actor: AuditActor, model: string, version: string, id: string): void {
    this.#db.transaction(() => {
      this.requireDraft(model, version);
      this.requireVariant(model, version, id);
      this.#db.prepare('DELETE FROM model_variants WHERE model = ? AND version = ? AND id = ?').run(model, version, id);
      this.#audit.record(actor, 'variant.delete', `${model}@${version}/${id}`);
    })();
  }

  /** Checks, before a byte is read, that an upload to this variant could be stored. */
  assertUploadable(model: string, version: string, id: string): void {
    this.requireDraft(model, version);
    this.requireVariant(model, version, id);
  }

  /** Records an uploaded artifact on its variant; the version must still be a draft at this moment. */
  attachArtifact(actor: AuditActor, model: string, version: string, id: string, artifact: StoredArtifact): VariantView {
    this.#db.transaction(() => {
      this.requireDraft(model, version);
      const previous = this.requireVariant(model, version, id);
      this.#db.prepare('UPDATE model_variants SET sha256 = ?, length = ? WHERE model = ? AND version = ? AND id = ?').run(artifact.sha256, artifact.length, model, version, id);
      this.#audit.record(actor, 'artifact.upload', `${model}@${version}/${id}`, { sha256: artifact.sha256, length: artifact.length, replaced: previous.sha256 });
    })();
    return variantView(this.requireVariant(model, version, id));
  }

  /** True when any variant (of any version) still names this blob. */
  isReferenced(sha256: string): boolean {
    return this.#db.prepare('SELECT 1 FROM model_variants WHERE sha256 = ? LIMIT 1').get(sha256) !== undefined;
  }
}
