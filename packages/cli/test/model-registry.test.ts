import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Inventory } from '@flotilla/protocol';
import { buildModels, modelDir, modelPath } from '@flotilla/modelkit';
import { TrustedKeys, verifyRelease } from '@flotilla/release';
import { ADMIN_TOKEN, auth, enrollBody, startServer, type TestServer } from '../../../server/test/helpers/server.ts';
import { adminEnv } from './helpers/env.ts';
import { flotilla } from './helpers/run-cli.ts';

const BUILD = 'mnist-edge-int8';
const cpuBox: Inventory = {
  arch: 'x86_64',
  os: { platform: 'linux', release: '6.1' },
  cpu: { model: 'test', cores: 2 },
  memoryBytes: 4e9,
  disk: { path: '/var/lib/flotilla', totalBytes: 64e9, freeBytes: 32e9 },
  gpu: null,
  executionProviders: ['cpu'],
  agentVersion: '0.1.0',
};

describe('flotilla model and keys commands against a real server', () => {
  let t: TestServer;
  let env: Record<string, string>;
  let work: string;
  let file: string;
  let card: string;
  let sha256: string;
  let length: number;

  const push = (version: string, ...extra: string[]) => pushAs({}, version, ...extra);
  const pushAs = (opts: { tty?: boolean }, version: string, ...extra: string[]) =>
    flotilla(['model', 'push', 'mnist-edge', version, '--file', file, '--variant', 'cpu-int8', '--precision', 'int8', '--provider', 'cpu', '--arch', 'x64,arm64', ...extra], { env, cwd: work, ...opts });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'flt-cli-'));
    await buildModels(join(work, 'models'), { only: [BUILD] });
    file = modelPath(join(work, 'models'), BUILD);
    card = join(modelDir(join(work, 'models'), BUILD), 'model.json');
    const bytes = readFileSync(file);
    sha256 = createHash('sha256').update(bytes).digest('hex');
    length = bytes.length;
    t = await startServer();
    env = adminEnv(t);
  });
  afterAll(async () => {
    await t?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('pushes a real model build, has the server sign it, and list and show report the sha256 the CLI computed and the server agreed', async () => {
    const pushed = await push('1.0.0', '--metadata', card, '--publish', '--json');
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    const out = pushed.json();
    const serverKeyId = t.server.registry.serverKey.keyId;
    expect(out).toMatchObject({ model: 'mnist-edge', version: '1.0.0', modelCreated: true, versionCreated: true, sha256, length, serverAgrees: true });
    expect(out.variant).toMatchObject({ id: 'cpu-int8', sha256, length, constraints: { executionProvider: 'cpu', arch: ['x64', 'arm64'] } });
    expect(out.publish).toMatchObject({ state: 'published', releaseCounter: 1, signedBy: [serverKeyId] });

    const list = await flotilla(['model', 'list'], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^mnist-edge\s+1\s+1\.0\.0\s/m);

    const show = await flotilla(['model', 'show', 'mnist-edge'], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(sha256);
    expect(show.stdout).toMatch(new RegExp(`cpu-int8\\s+onnx\\s+int8\\s+${length}\\s+${sha256}\\s+arch=x64,arm64 provider=cpu`));
    expect(show.stdout).toContain(`release 1, digest ${out.publish.digest}, signed by ${serverKeyId}`);

    const version = (await flotilla(['model', 'show', 'mnist-edge', '1.0.0', '--json'], { env })).json();
    expect(version).toMatchObject({ state: 'published', manifest: { digest: out.publish.digest }, variants: [{ id: 'cpu-int8', sha256, length }] });
  });

  it('signs offline with a key from `keys generate` only once an admin has trusted it, and devices can verify that signature', async () => {
    const generated = await flotilla(['keys', 'generate', '--out', 'release.pem', '--json'], { cwd: work });
    expect(generated.code).toBe(0);
    const { keyId, publicKey, privateKeyFile } = generated.json();
    expect(privateKeyFile).toBe(join(work, 'release.pem'));
    expect(statSync(privateKeyFile).mode & 0o777).toBe(0o600);
    const again = await flotilla(['keys', 'generate', '--out', 'release.pem'], { cwd: work });
    expect([again.code, again.stderr]).toEqual([2, expect.stringContaining('already exists')]);

    // Not trusted yet: the server refuses the signature and the version waits for a good one.
    const refused = await push('1.1.0', '--metadata', card, '--publish', '--offline-key', 'release.pem');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FLT_RELEASE_UNKNOWN_KEY');
    expect((await flotilla(['model', 'show', 'mnist-edge', '1.1.0', '--json'], { env })).json()).toMatchObject({ state: 'awaiting-signature', manifest: { signedBy: [] } });

    const trusted = await flotilla(['keys', 'trust', publicKey, '--label', 'release-engineer', '--json'], { env });
    expect(trusted.code).toBe(0);
    expect(trusted.json().keys.map((k: { keyId: string }) => k.keyId)).toContain(keyId);
    const keys = await flotilla(['keys', 'list'], { env });
    expect(keys.stdout).toMatch(new RegExp(`${keyId}\\s+release-engineer\\s+trusted`));

    const signed = await flotilla(['model', 'sign', 'mnist-edge', '1.1.0', '--key', 'release.pem', '--json'], { env, cwd: work });
    expect(signed.code).toBe(0);
    expect(signed.json()).toMatchObject({ state: 'published', releaseCounter: 2, signedBy: [keyId] });

    // Push and offline signing in one step, then check the envelope the way a device does.
    const oneStep = await push('1.2.0', '--metadata', card, '--publish', '--offline-key', 'release.pem', '--json');
    expect(oneStep.code).toBe(0);
    expect(oneStep.json().publish).toMatchObject({ state: 'published', releaseCounter: 3, signedBy: [keyId] });
    const envelope = await (await request(`${t.http}/v1/models/mnist-edge/versions/1.2.0/manifest`, { headers: auth(ADMIN_TOKEN) })).body.json();
    const trustedKeys = TrustedKeys.from((await flotilla(['keys', 'list', '--json'], { env })).json().keys);
    const verified = verifyRelease(envelope, { trustedKeys, now: Date.now(), expect: { model: 'mnist-edge', version: '1.2.0' } });
    expect(verified.keyIds).toEqual([keyId]);
    expect(verified.manifest.variants).toEqual([expect.objectContaining({ id: 'cpu-int8', file: expect.objectContaining({ sha256, length }) })]);

    // Freezing for a signer elsewhere, then signing as that signer.
    expect((await push('1.3.0', '--metadata', card)).code).toBe(0);
    const frozen = await flotilla(['model', 'publish', 'mnist-edge', '1.3.0', '--await-signature', '--json'], { env });
    expect(frozen.json()).toMatchObject({ state: 'awaiting-signature', releaseCounter: 4, signedBy: [] });
    const later = await flotilla(['model', 'sign', 'mnist-edge', '1.3.0', '--key', join(work, 'release.pem')], { env });
    expect([later.code, later.stdout]).toEqual([0, expect.stringMatching(new RegExp(`^mnist-edge 1\\.3\\.0 published: release 4, manifest digest [0-9a-f]{64}, signed by ${keyId}\n$`))]);
  });

  it('adds a second variant to an existing draft without metadata, publishes it, and explains which variant a device gets', async () => {
    const first = await pushAs({ tty: true }, '2.0.0', '--metadata', card);
    expect(first.code).toBe(0);
    // On a terminal the upload shows a progress bar on stderr, ending at every byte sent.
    expect(first.stderr).toContain(`100% | ${length}/${length} bytes`);
    const second = await flotilla(['model', 'push', 'mnist-edge', '2.0.0', '--file', file, '--variant', 'portable', '--precision', 'int8', '--json'], { env });
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({ modelCreated: false, versionCreated: false, publish: null, variant: { id: 'portable', constraints: {} } });
    const clash = await flotilla(['model', 'push', 'mnist-edge', '2.0.0', '--file', file, '--variant', 'portable', '--precision', 'fp32'], { env });
    expect([clash.code, clash.stderr]).toEqual([1, expect.stringContaining('FLT_REGISTRY_EXISTS')]);
    const published = await flotilla(['model', 'publish', 'mnist-edge', '2.0.0'], { env });
    expect([published.code, published.stdout]).toEqual([0, expect.stringMatching(/^mnist-edge 2\.0\.0 published: release 5/)]);

    await t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody('cpu-box', { inventory: cpuBox }) });
    expect((await flotilla(['devices', 'accept', 'cpu-box'], { env })).code).toBe(0);
    const resolved = await flotilla(['model', 'resolve', 'mnist-edge', '2.0.0', '--device', 'cpu-box'], { env });
    expect(resolved.code).toBe(0);
    // Equal tier and provider: the variant that declares more constraints wins.
    expect(resolved.stdout).toMatch(/^mnist-edge 2\.0\.0 for device cpu-box: cpu-int8 \(onnx int8\) on cpu$/m);
    expect(resolved.stdout).toMatch(/^why: /m);
    expect(resolved.stdout).toMatch(/^portable\s+accepted\s+2\s/m);

    writeFileSync(join(work, 'riscv.json'), JSON.stringify({ arch: 'riscv64', gpu: null, executionProviders: ['cpu'] }));
    const nothing = await flotilla(['model', 'resolve', 'mnist-edge', '1.0.0', '--inventory', 'riscv.json'], { env, cwd: work });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('FLT_OTA_INCOMPATIBLE');
    expect(nothing.stdout).toMatch(/^cpu-int8\s+rejected\s+-\s+\S/m);
  });
});
