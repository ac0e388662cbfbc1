import { FlotillaError } from '@flotilla/protocol';

/** What the registry says about one model version, as far as a rollout cares. */
export type ReleaseStatus = 'published' | 'unpublished' | 'unknown-version' | 'unknown-model';

/** The registry seen structurally, so rollouts do not depend on the registry module. */
export interface ReleaseCatalog {
  status(model: string, version: string): ReleaseStatus;
}

/** The registry's model store, as much of it as the check reads. */
export interface RegistryModelLookup {
  getModel(name: string): unknown;
  versionRow(model: string, version: string): { state: string } | undefined;
}

/**
 * Adapts the registry. A rollout must name a model the registry holds and one of its published
 * versions, since agents install only from a signed release manifest.
 */
export function releaseCatalogFromRegistry(models: RegistryModelLookup): ReleaseCatalog {
  return {
    status(model, version) {
      try {
        models.getModel(model);
      } catch (err) {
        if (err instanceof FlotillaError && err.code === 'FLT_REGISTRY_MODEL_NOT_FOUND') return 'unknown-model';
        throw err;
      }
      const row = models.versionRow(model, version);
      if (!row) return 'unknown-version';
      return row.state === 'published' ? 'published' : 'unpublished';
    },
  };
}

/** Refuses a rollout no agent could install: a model or version unknown to the registry, or a version not yet published. */
export function assertReleasable(catalog: ReleaseCatalog | undefined, model: string, version: string): void {
  if (!catalog) return;
  const status = catalog.status(model, version);
  if (status === 'unknown-model') throw new FlotillaError('FLT_ROLLOUT_UNKNOWN_MODEL', `the registry has no model ${model}`, { model });
  if (status === 'unknown-version') throw new FlotillaError('FLT_ROLLOUT_UNKNOWN_VERSION', `the registry has no version ${model}@${version}`, { model, version });
  if (status === 'unpublished') throw new FlotillaError('FLT_ROLLOUT_UNKNOWN_VERSION', `${model}@${version} is not published yet`, { model, version, status });
}
