import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { KServeSidecarBackend } from '../../src/inference/kserve-sidecar/index.ts';
import { InferenceService } from '../../src/inference/index.ts';
import type { LoadSpec } from '../../src/inference/types.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { goldenInput, goldenOutput, tinyMlp } from '../local-api/models.ts';
import { startTestServer, type TestServerProcess } from './test-server-process.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * The test server runs ONNX only, so the "plan" the tests load is the tiny MLP's ONNX file copied
 * under the plan's name: the agent side (layout, config, repository calls, binary inference) is
 * exactly what it does for a real TensorRT plan.
 */
async function planSpec(version = '1.0.0'): Promise<LoadSpec> {
  const { path } = await tinyMlp();
  const plan = join(tempDir('flotilla-plan-'), 'tiny-mlp.plan');
  writeFileSync(plan, readFileSync(path));
  return { model: 'tiny-mlp', version, path: plan, format: 'tensorrt-plan', providers: ['tensorrt'] };
}

function backendFor(url: string, repositoryDir: string, extra: Partial<ConstructorParameters<typeof KServeSidecarBackend>[0]> = {}): KServeSidecarBackend {
  const backend = new KServeSidecarBackend({ baseUrl: url, repositoryDir, ...extra });
  closers.push(() => backend.close());
  return backend;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (err) {
    if (err instanceof FlotillaError) return err.code;
    throw err;
  }
}

function goldenTensor(card: Awaited<ReturnType<typeof tinyMlp>>['card']) {
  const g = goldenInput(card);
  return { name: g.name, datatype: 'FP32' as const, shape: g.shape, data: Float32Array.from(g.data) };
}

describe('KServe sidecar backend', () => {
  // One test server process for the suite (each test loads its own versions); the test that stops
  // its server starts its own.
  let shared: TestServerProcess;
  let repo: string;
  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'flotilla-repo-'));
    shared = await startTestServer(repo);
  });
  afterAll(async () => {
    await shared?.stop();
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  it('places the plan in the repository, loads it through the repository API and infers over the binary extension', async () => {
    const server = shared;
    const backend = backendFor(server.url, repo);
    const spec = await planSpec();
    expect(backend.supports(spec)).toBe(true);
    expect(backend.supports({ format: 'onnx', providers: ['cpu'] })).toBe(false);

    const model = await backend.load(spec);
    expect(readFileSync(join(repo, 'tiny-mlp--1.0.0', 'config.pbtxt'), 'utf8')).toContain('platform: "tensorrt_plan"');
    expect(existsSync(join(repo, 'tiny-mlp--1.0.0', '1', 'model.plan'))).toBe(true);
    expect(model.provider).toBe('tensorrt');
    expect(model.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 16] }]);

    const { card } = await tinyMlp();
    const [out] = await model.infer([goldenTensor(card)]);
    const want = goldenOutput(card);
    expect(out?.shape).toEqual(want.shape);
    const got = out?.data as Float32Array;
    want.data.forEach((v, i) => expect(Math.abs((got[i] as number) - v)).toBeLessThanOrEqual(card.golden.tolerance));

    const index = await fetch(`${server.url}/v2/repository/index`, { method: 'POST' }).then((r) => r.json());
    expect(index).toEqual([{ name: 'tiny-mlp--1.0.0', version: '1', state: 'READY' }]);
  });

  it('unloads from the server and removes the repository folder, and refuses requests afterwards', async () => {
    const server = shared;
    const backend = backendFor(server.url, repo);
    const model = await backend.load(await planSpec());
    await model.unload();
    await model.unload();
    expect(existsSync(join(repo, 'tiny-mlp--1.0.0'))).toBe(false);
    expect(await fetch(`${server.url}/v2/models/tiny-mlp--1.0.0/ready`).then((r) => r.status)).not.toBe(200);
    const { card } = await tinyMlp();
    expect(await codeOf(model.infer([goldenTensor(card)]))).toBe('FLT_INFER_UNAVAILABLE');
  });

  it('serves two versions side by side as separate repository models', async () => {
    const server = shared;
    const backend = backendFor(server.url, repo);
    const a = await backend.load(await planSpec('1.0.0'));
    const b = await backend.load(await planSpec('1.1.0'));
    await a.unload();
    const { card } = await tinyMlp();
    expect((await b.infer([goldenTensor(card)]))[0]?.name).toBe('probabilities');
  });

  it('says FLT_KSERVE_UNAVAILABLE when the server is down, and reports it unhealthy', async () => {
    const own = tempDir('flotilla-repo-');
    const server = await startTestServer(own);
    onTestFinished(() => server.stop());
    const backend = backendFor(server.url, own);
    const model = await backend.load(await planSpec());
    expect(await backend.health()).toEqual({ live: true, ready: true });
    await server.stop();
    const { card } = await tinyMlp();
    expect(await codeOf(model.infer([goldenTensor(card)]))).toBe('FLT_KSERVE_UNAVAILABLE');
    expect(await backend.health()).toEqual({ live: false, ready: false });
    expect(await codeOf(backend.load(await planSpec('2.0.0')))).toBe('FLT_KSERVE_UNAVAILABLE');
    expect(existsSync(join(own, 'tiny-mlp--2.0.0'))).toBe(false);
  });

  it('says FLT_KSERVE_MODEL_NOT_READY when the server lost the model behind the agent', async () => {
    const server = shared;
    const backend = backendFor(server.url, repo);
    const model = await backend.load(await planSpec());
    await fetch(`${server.url}/v2/repository/models/tiny-mlp--1.0.0/unload`, { method: 'POST', body: '{}' });
    const { card } = await tinyMlp();
    expect(await codeOf(model.infer([goldenTensor(card)]))).toBe('FLT_KSERVE_MODEL_NOT_READY');
  });

  it('refuses a missing artifact, a file the server cannot load, and names unfit for the repository, leaving no folder behind', async () => {
    const server = shared;
    const backend = backendFor(server.url, repo);
    const spec = await planSpec();
    expect(await codeOf(backend.load({ ...spec, path: join(repo, 'nope.plan') }))).toBe('FLT_KSERVE_ARTIFACT_MISSING');
    const junk = join(tempDir('flotilla-plan-'), 'junk.plan');
    writeFileSync(junk, 'not an engine');
    expect(await codeOf(backend.load({ ...spec, path: junk }))).toBe('FLT_KSERVE_LOAD_FAILED');
    expect(existsSync(join(repo, 'tiny-mlp--1.0.0'))).toBe(false);
    expect(await codeOf(backend.load({ ...spec, model: '../etc' }))).toBe('FLT_KSERVE_NAME_INVALID');
    expect(await codeOf(backend.load({ ...spec, version: '1/../../x' }))).toBe('FLT_KSERVE_NAME_INVALID');
  });

  it('times out with FLT_KSERVE_TIMEOUT when the server accepts connections but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as { port: number }).port;
    const backend = backendFor(`http://127.0.0.1:${port}`, tempDir('flotilla-repo-'), { loadTimeoutMs: 200 });
    expect(await codeOf(backend.load(await planSpec()))).toBe('FLT_KSERVE_TIMEOUT');
  });

  it('plugs into the inference service, which stages plans through it', async () => {
    const server = shared;
    const sidecar = new KServeSidecarBackend({ baseUrl: server.url, repositoryDir: repo });
    const service = new InferenceService({ backends: [sidecar], warmupRuns: 1 });
    closers.push(() => service.close());
    const staged = await service.load(await planSpec());
    expect(staged.backend).toBe('kserve-sidecar');
    const { card } = await tinyMlp();
    const result = await service.infer('tiny-mlp', [goldenTensor(card)]);
    expect(result).toMatchObject({ version: '1.0.0', provider: 'tensorrt' });
  });
});
