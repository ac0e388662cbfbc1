import { join } from 'node:path';
import type { ServerConfig } from '../config/schema.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { DiskArtifactStore } from './disk-store.ts';
import { S3ArtifactStore } from './s3-store.ts';

const MiB = 1024 * 1024;

/** The artifact store the configuration names: the data folder's, or an S3-compatible bucket. */
export async function createArtifactStore(config: Readonly<ServerConfig>, dataDir: string, now: () => number): Promise<ArtifactStore> {
  const a = config.artifacts;
  if (a.store === 'disk') return DiskArtifactStore.create(join(dataDir, 'artifacts'));
  const { partSizeMiB, singleCopyLimitMiB, ...s3 } = a;
  return S3ArtifactStore.create({ ...s3, partSizeBytes: partSizeMiB * MiB, singleCopyLimitBytes: singleCopyLimitMiB * MiB, maxArtifactBytes: config.registry.maxArtifactBytes, now });
}
