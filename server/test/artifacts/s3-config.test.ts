import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { loadConfig, resolveConfig } from '../../src/config/load.ts';

const s3 = { store: 's3', endpoint: 'http://127.0.0.1:9000', bucket: 'flotilla-artifacts', accessKeyId: 'id', secretAccessKey: 'secret' } as const;

function invalid(input: unknown): FlotillaError {
  try {
    resolveConfig(input);
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err;
  }
  throw new Error('configuration was accepted');
}

describe('artifact store configuration', () => {
  it('keeps artifacts on disk unless told otherwise', () => {
    expect(resolveConfig({}).artifacts).toEqual({ store: 'disk' });
  });

  it('fills the S3 defaults: proxy downloads, 300 s presigned URLs, virtual-host addressing, no prefix, 8 MiB parts, single copies up to 5 GiB', () => {
    expect(resolveConfig({ artifacts: s3 }).artifacts).toEqual({ ...s3, region: 'us-east-1', forcePathStyle: false, prefix: '', downloads: 'proxy', presignTtlSec: 300, partSizeMiB: 8, singleCopyLimitMiB: 5120 });
  });

  it('refuses an S3 store without a bucket or secret, with unknown keys, or with a bad endpoint or lifetime', () => {
    const { bucket: _b, ...noBucket } = s3;
    const { secretAccessKey: _s, ...noSecret } = s3;
    for (const artifacts of [noBucket, noSecret, { ...s3, acl: 'public-read' }, { ...s3, endpoint: 'ftp://x' }, { ...s3, presignTtlSec: 1 }, { store: 'disk', bucket: 'x' }, { store: 'gcs' }]) {
      expect(invalid({ artifacts }).code).toBe('FLT_CONFIG_INVALID');
    }
  });

  it('reads FLOTILLA_ARTIFACT_STORE and FLOTILLA_S3_* and layers them over the file key by key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flt-s3-config-'));
    try {
      const file = join(dir, 'server.json');
      writeFileSync(file, JSON.stringify({ artifacts: { store: 's3', endpoint: 'http://minio:9000', bucket: 'from-file', accessKeyId: 'id', secretAccessKey: 'placeholder' } }));
      const c = loadConfig({
        file,
        env: { FLOTILLA_S3_SECRET_ACCESS_KEY: 'from-env', FLOTILLA_S3_FORCE_PATH_STYLE: 'true', FLOTILLA_S3_DOWNLOADS: 'redirect', FLOTILLA_S3_PRESIGN_TTL_SEC: '60', FLOTILLA_S3_PREFIX: 'prod/' },
      });
      expect(c.artifacts).toMatchObject({ store: 's3', endpoint: 'http://minio:9000', bucket: 'from-file', secretAccessKey: 'from-env', forcePathStyle: true, downloads: 'redirect', presignTtlSec: 60, prefix: 'prod/' });
      const fromEnv = loadConfig({
        env: { FLOTILLA_ARTIFACT_STORE: 's3', FLOTILLA_S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', FLOTILLA_S3_REGION: 'eu-west-1', FLOTILLA_S3_BUCKET: 'b-env', FLOTILLA_S3_ACCESS_KEY_ID: 'k', FLOTILLA_S3_SECRET_ACCESS_KEY: 's' },
      });
      expect(fromEnv.artifacts).toMatchObject({ store: 's3', region: 'eu-west-1', bucket: 'b-env', downloads: 'proxy' });
      expect(() => loadConfig({ env: { FLOTILLA_S3_BUCKET: 'only-a-bucket' } })).toThrow(FlotillaError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
