import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tokenFor, type TestServer } from '../../../server/test/helpers/server.ts';
import { adminEnv } from './helpers/env.ts';
import { flotilla } from './helpers/run-cli.ts';

describe('flotilla errors and exit statuses', () => {
  let t: TestServer;
  let env: Record<string, string>;
  let work: string;
  let artifact: string;

  beforeAll(async () => {
    // A small artifact cap, so a refusal that arrives while the CLI is still sending can be tested.
    t = await startServer({ registry: { maxArtifactBytes: 64 * 1024 } });
    env = adminEnv(t);
    work = mkdtempSync(join(tmpdir(), 'flt-cli-errors-'));
    // The registry does not look inside artifacts, so any bytes do for refusals that come before it.
    artifact = join(work, 'model.onnx');
    writeFileSync(artifact, Buffer.from('not really onnx'));
    writeFileSync(join(work, 'metadata.json'), JSON.stringify({ inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }] }));
  });
  afterAll(async () => {
    await t?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const pushArgs = (...extra: string[]) => ['model', 'push', 'digits', '1.0.0', '--variant', 'cpu-int8', '--precision', 'int8', ...extra];

  it('exits 1 and prints FLT_UNAUTHENTICATED with the server message when the token is wrong', async () => {
    const run = await flotilla(['model', 'list', '--token', 'flta_wrong-token-0000000000000000'], { env });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: FLT_UNAUTHENTICATED: .+ \(HTTP 401\)\n$/);

    const asJson = await flotilla(['devices', 'list', '--json'], { env: { ...env, FLOTILLA_TOKEN: 'flta_wrong-token-0000000000000000' } });
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stderr)).toMatchObject({ error: { code: 'FLT_UNAUTHENTICATED', status: 401 } });
  });

  it('says how to give a token when none was given', async () => {
    const run = await flotilla(['model', 'list'], { env: { FLOTILLA_SERVER_URL: t.http } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('FLT_UNAUTHENTICATED');
    expect(run.stderr).toContain('pass --token or set FLOTILLA_TOKEN');
  });

  it('exits 1 with FLT_FORBIDDEN when a viewer token tries to push', async () => {
    const viewer = await tokenFor(t, 'viewer');
    const run = await flotilla(pushArgs('--file', artifact, '--metadata', 'metadata.json', '--token', viewer), { env, cwd: work });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('FLT_FORBIDDEN');
  });

  it('exits 1 with the server code when the server refuses the artifact while it is being sent', async () => {
    const big = join(work, 'big.onnx');
    writeFileSync(big, Buffer.alloc(4 * 1024 * 1024, 7));
    const run = await flotilla(['model', 'push', 'big', '1.0.0', '--file', big, '--variant', 'v', '--precision', 'fp32', '--metadata', 'metadata.json'], { env, cwd: work });
    expect([run.code, run.stderr]).toEqual([1, expect.stringMatching(/^error: FLT_ARTIFACT_TOO_LARGE: .+ \(HTTP 413\)\n$/)]);
    const view = (await flotilla(['model', 'show', 'big', '1.0.0', '--json'], { env })).json();
    expect(view.variants).toEqual([expect.objectContaining({ id: 'v', sha256: null, length: null })]);
  });

  it('exits 2 with a clear message for a missing file, and sends nothing to the server', async () => {
    const run = await flotilla(pushArgs('--file', 'no-such-model.onnx'), { env, cwd: work });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`error: FLT_CLI_USAGE: --file ${join(work, 'no-such-model.onnx')} does not exist\n`);
    expect((await flotilla(['model', 'show', 'digits', '--json'], { env })).stderr).toContain('FLT_REGISTRY_MODEL_NOT_FOUND');
  });

  it('exits 2 without creating anything when a new version has no metadata', async () => {
    const run = await flotilla(pushArgs('--file', artifact), { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('digits@1.0.0 does not exist yet: pass --metadata');
    expect((await flotilla(['model', 'show', 'digits', '--json'], { env })).stderr).toContain('FLT_REGISTRY_MODEL_NOT_FOUND');
  });

  it('exits 2 for unreadable metadata, a key without --publish, and a bad signing key file', async () => {
    writeFileSync(join(work, 'broken.json'), '{ not json');
    writeFileSync(join(work, 'not-a-key.pem'), 'hello');
    const cases = [
      [pushArgs('--file', artifact, '--metadata', 'broken.json'), 'is not JSON'],
      [pushArgs('--file', artifact, '--offline-key', 'not-a-key.pem'), '--offline-key only makes sense with --publish'],
      [pushArgs('--file', artifact, '--publish', '--offline-key', 'not-a-key.pem'), 'is not an ed25519 private key'],
      [['model', 'sign', 'digits', '1.0.0', '--key', 'missing.pem'], 'cannot read signing key'],
    ] as const;
    for (const [argv, message] of cases) {
      const run = await flotilla([...argv], { env, cwd: work });
      expect([run.code, run.stderr]).toEqual([2, expect.stringContaining(message)]);
    }
  });

  it('exits 2 for command-line mistakes commander catches: unknown option, missing option, bad choice, unknown command', async () => {
    for (const argv of [
      ['model', 'list', '--bogus'],
      ['model', 'push', 'digits', '1.0.0', '--variant', 'v', '--precision', 'int8'],
      pushArgs('--file', artifact, '--format', 'pytorch'),
      ['modle', 'list'],
      ['devices', 'list', '--label', 'no-equals-sign'],
    ]) {
      const run = await flotilla(argv, { env });
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^error: /);
    }
  });

  it('exits 0 and prints help for --help', async () => {
    const run = await flotilla(['model', 'push', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--offline-key <path>');
  });

  it('exits 1 with FLT_CLI_SERVER_UNREACHABLE when nothing listens at the server URL', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const run = await flotilla(['model', 'list', '--server', url], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`FLT_CLI_SERVER_UNREACHABLE: cannot reach the server at ${url}`);
  });

  it('exits 2 for a server URL that is not http(s)', async () => {
    const run = await flotilla(['model', 'list', '--server', 'ftp://example.test'], { env });
    expect([run.code, run.stderr]).toEqual([2, expect.stringContaining('must be http:// or https://')]);
  });
});
