import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { startSigv4Gate, type Sigv4Gate } from './sigv4-gate.ts';

/** s3rver only knows this access key; the secret is checked by the SigV4 gate in front of it. */
export const ACCESS_KEY_ID = 'S3RVER';
export const SECRET_ACCESS_KEY = 'flotilla-test-secret-0123456789abcdef';
export const BUCKET = 'flotilla-artifacts';

export interface LocalS3 {
  /** The gate's URL: what the server under test is configured with. */
  endpoint: string;
  gate: Sigv4Gate;
  /** Every key in the bucket, sorted (listed through the gate with valid credentials). */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A local S3-compatible server for one test file: s3rver (from npm) on a free loopback port,
 * storing in a fresh temp folder, behind the strict SigV4 gate (a test double, see sigv4-gate.ts).
 */
export async function startLocalS3(opts: { now?: () => number } = {}): Promise<LocalS3> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-s3-'));
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true, configureBuckets: [{ name: BUCKET }] });
  const { port } = await s3.run();
  const gate = await startSigv4Gate({ upstream: { host: '127.0.0.1', port }, keys: { [ACCESS_KEY_ID]: SECRET_ACCESS_KEY }, ...(opts.now ? { now: opts.now } : {}) });
  const client = new S3Client({
    endpoint: gate.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
  });
  let closing: Promise<void> | undefined;
  return {
    endpoint: gate.url,
    gate,
    async keys() {
      const res = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      return (res.Contents ?? []).map((o) => o.Key ?? '').sort();
    },
    close: () =>
      (closing ??= (async () => {
        client.destroy();
        await gate.close();
        s3.httpServer?.closeAllConnections();
        await s3.close();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
