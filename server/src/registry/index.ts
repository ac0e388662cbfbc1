import type { ServerConfig } from '../config/schema.ts';
import type { Db } from '../db/open.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { DeviceStore } from '../fleet/device-store.ts';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { createArtifactStore } from '../artifacts/create-store.ts';
import { ModelRegistry } from './model-registry.ts';
import { ReleasePublisher } from './release-publisher.ts';
import { Entitlements } from './entitlements.ts';
import { KeyTrust } from './key-trust.ts';
import { VariantResolver } from './variant-resolution.ts';
import { loadOrCreateSigningKey, type ServerSigningKey } from './signing-key.ts';

export { ModelRegistry } from './model-registry.ts';
export { ReleasePublisher, type PublishResult } from './release-publisher.ts';
export { Entitlements } from './entitlements.ts';
export { KeyTrust } from './key-trust.ts';
export { VariantResolver, type Resolution } from './variant-resolution.ts';
export { loadOrCreateSigningKey, signingKeyPath, type ServerSigningKey } from './signing-key.ts';

/** The registry's services, built once per server and shared by the REST routes (and later rollouts). */
export interface RegistryServices {
  models: ModelRegistry;
  publisher: ReleasePublisher;
  entitlements: Entitlements;
  keys: KeyTrust;
  artifacts: ArtifactStore;
  resolver: VariantResolver;
  serverKey: ServerSigningKey;
  maxArtifactBytes: number;
}

export interface RegistryDeps {
  config: Readonly<ServerConfig>;
  dataDir: string;
  db: Db;
  audit: AuditLog;
  devices: DeviceStore;
  now: () => number;
  /** Defaults to the store `config.artifacts` names (the content-addressed folder `<dataDir>/artifacts` unless set). */
  artifacts?: ArtifactStore;
}

export async function createRegistry(deps: RegistryDeps): Promise<RegistryServices> {
  const { db, audit, now } = deps;
  const serverKey = await loadOrCreateSigningKey(deps.dataDir);
  const artifacts = deps.artifacts ?? (await createArtifactStore(deps.config, deps.dataDir, now));
  const models = new ModelRegistry({ db, audit, now });
  const keys = KeyTrust.open({ db, audit, now, serverKey });
  return {
    models,
    publisher: new ReleasePublisher({ db, audit, now, registry: models, keys, serverKey, manifestTtlMs: deps.config.registry.manifestTtlSec * 1000 }),
    entitlements: new Entitlements({ db, audit, now }),
    keys,
    artifacts,
    resolver: new VariantResolver({ registry: models, devices: deps.devices }),
    serverKey,
    maxArtifactBytes: deps.config.registry.maxArtifactBytes,
  };
}
