import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { compareToGolden, writeCorruptedModel, type EvalSet } from '@flotilla/modelkit';
import { FlotillaError } from '@flotilla/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OnnxLoadedModel } from '../../src/inference/onnx/onnx-loaded-model.ts';
import { OnnxRuntimeBackend } from '../../src/inference/onnx/onnxruntime-backend.ts';
import type { LoadedModel, Tensor } from '../../src/inference/types.ts';
import { buildFixtures, floatInput, goldenInput, type BuiltModels } from './model-fixtures.ts';

let models: BuiltModels;
const backend = new OnnxRuntimeBackend();

beforeAll(async () => {
  models = await buildFixtures(['tiny-mlp-fp32', 'mnist-edge-int8', 'mnist-edge-int8-unloadable', 'heavy-conv-fp32']);
}, 120_000);

afterAll(async () => {
  await backend.close();
  models?.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof FlotillaError ? err.code : `not a FlotillaError: ${String(err)}`;
  }
  return 'resolved';
}

function byName(outputs: Tensor[]): Record<string, { data: unknown; dims: readonly number[] }> {
  return Object.fromEntries(outputs.map((t) => [t.name, { data: t.data, dims: t.shape }]));
}

describe('OnnxRuntimeBackend', () => {
  it('loads a model in a worker thread and its outputs match the golden outputs', async () => {
    const loaded = await backend.load(models.spec('tiny-mlp-fp32'));
    try {
      expect(loaded.provider).toBe('cpu');
      expect(loaded.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 16] }]);
      expect(loaded.outputs).toEqual([{ name: 'probabilities', datatype: 'FP32', shape: [-1, 5] }]);
      const card = models.card('tiny-mlp-fp32');
      const outputs = await loaded.infer(goldenInput(card));
      expect(compareToGolden(card.golden, byName(outputs)).pass).toBe(true);
    } finally {
      await loaded.unload();
    }
  });

  it('classifies the real MNIST evaluation digits with the int8 edge model as accurately as its card says', async () => {
    const card = models.card('mnist-edge-int8');
    const evalSet = JSON.parse(readFileSync(join(models.dir, 'mnist-edge-int8', card.files.evalSet ?? 'eval-set.json'), 'utf8')) as EvalSet;
    const loaded = await backend.load(models.spec('mnist-edge-int8'));
    try {
      const [out] = await loaded.infer([{ name: 'input', datatype: 'FP32', shape: evalSet.shape, data: Float32Array.from(evalSet.data.flat()) }]);
      const probs = out?.data as Float32Array;
      let correct = 0;
      evalSet.labels.forEach((label, row) => {
        const p = probs.subarray(row * 10, row * 10 + 10);
        if (p.indexOf(Math.max(...p)) === label) correct++;
      });
      // The card measures 91.65 % on 2,000 test digits; 200 of them must land near that.
      expect(correct / evalSet.labels.length).toBeGreaterThan(0.85);
    } finally {
      await loaded.unload();
    }
  });

  it('gives the same answers over the shared-memory lane, the message fallback for large tensors, and the post-message channel', async () => {
    const lane = await backend.load(models.spec('mnist-edge-int8'));
    const posted = new OnnxRuntimeBackend({ channel: 'post-message' });
    try {
      const viaPost = await posted.load(models.spec('mnist-edge-int8'));
      // 1 row (3 KB) fits the 64 KiB lane; 64 rows (200 KB) travel by message.
      for (const rows of [1, 64]) {
        const input = floatInput(rows, 784, rows);
        const [a] = await lane.infer([input]);
        const [b] = await viaPost.infer([input]);
        expect(a?.shape).toEqual([rows, 10]);
        expect(Array.from(a?.data as Float32Array)).toEqual(Array.from(b?.data as Float32Array));
      }
      // Many at once: 8 ride the lane's slots, the rest queue on the port; every answer matches its request.
      const inputs = Array.from({ length: 20 }, (_, i) => floatInput(1, 784, i + 100));
      const together = await Promise.all(inputs.map((x) => lane.infer([x])));
      const oneByOne: Tensor[][] = [];
      for (const x of inputs) oneByOne.push(await viaPost.infer([x]));
      together.forEach((t, i) => expect(Array.from(t[0]?.data as Float32Array)).toEqual(Array.from(oneByOne[i]?.[0]?.data as Float32Array)));
    } finally {
      await lane.unload();
      await posted.close();
    }
  });

  it('runs the native session directly by default, with the same answers as the public session class', async () => {
    const direct = await backend.load(models.spec('mnist-edge-int8'));
    const viaPublic = new OnnxRuntimeBackend({ directRun: false });
    try {
      const reference = await viaPublic.load(models.spec('mnist-edge-int8'));
      // Fails when an onnxruntime-node upgrade changes the addon and the worker falls back unnoticed.
      expect((direct as OnnxLoadedModel).runner).toBe('native');
      expect((reference as OnnxLoadedModel).runner).toBe('public');
      expect(direct.inputs).toEqual(reference.inputs);
      expect(direct.outputs).toEqual(reference.outputs);
      for (const rows of [1, 3]) {
        const input = floatInput(rows, 784, rows + 40);
        const [a] = await direct.infer([input]);
        const [b] = await reference.infer([input]);
        expect(a?.shape).toEqual(b?.shape);
        expect(Array.from(a?.data as Float32Array)).toEqual(Array.from(b?.data as Float32Array));
      }
      // Asked for one output by name, and given a bad input: the same as the public class.
      const [only] = await direct.infer([floatInput(1, 784, 5)], { outputs: ['probabilities'] });
      expect(only?.name).toBe('probabilities');
      expect(await codeOf(direct.infer([{ name: 'input', datatype: 'FP32', shape: [1, 783], data: new Float32Array(783) }]))).toBe(
        await codeOf(reference.infer([{ name: 'input', datatype: 'FP32', shape: [1, 783], data: new Float32Array(783) }])),
      );
    } finally {
      await direct.unload();
      await viaPublic.close();
    }
  });

  it('pipelines concurrent requests of mixed sizes through the lane slots and the port, each answered with its own outputs, whichever thread polls', async () => {
    const reference = new OnnxRuntimeBackend({ channel: 'post-message' });
    const polling = new OnnxRuntimeBackend({ laneSlots: 3, spinUs: 40, workerSpinUs: 200 });
    const sleeping = new OnnxRuntimeBackend({ laneSlots: 2, workerSpinUs: 0 });
    try {
      const ref = await reference.load(models.spec('mnist-edge-int8'));
      // Every third request is too large for a 64 KiB slot and is posted instead.
      const inputs = Array.from({ length: 30 }, (_, i) => floatInput(i % 3 === 2 ? 40 : 1 + (i % 2), 784, i + 7));
      const expected: Tensor[][] = [];
      for (const x of inputs) expected.push(await ref.infer([x]));
      for (const b of [polling, sleeping]) {
        const loaded = await b.load(models.spec('mnist-edge-int8'));
        for (let round = 0; round < 3; round++) {
          const got = await Promise.all(inputs.map((x) => loaded.infer([x])));
          got.forEach((t, i) => {
            expect(t[0]?.shape).toEqual(expected[i]?.[0]?.shape);
            expect(Array.from(t[0]?.data as Float32Array)).toEqual(Array.from(expected[i]?.[0]?.data as Float32Array));
          });
        }
        // One at a time, the pattern where the threads poll for each other.
        for (let i = 0; i < 30; i++) expect(Array.from((await loaded.infer([inputs[0] as Tensor]))[0]?.data as Float32Array)).toEqual(Array.from(expected[0]?.[0]?.data as Float32Array));
      }
    } finally {
      await Promise.all([reference.close(), polling.close(), sleeping.close()]);
    }
  });

  it('loads a candidate beside a serving version at a lower priority, then serves it at the process priority', async () => {
    // Linux: each thread's nice value is field 19 of /proc/self/task/<tid>/stat.
    const niceOfThreads = (): number[] =>
      readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
        } catch {
          return []; // a thread that ended between the listing and the read
        }
      });
    const own = getPriority();
    const b = new OnnxRuntimeBackend({ loadNice: 10 });
    try {
      await b.load(models.spec('tiny-mlp-fp32'));
      const seen = new Set<number>();
      const sampler = setInterval(() => niceOfThreads().forEach((n) => seen.add(n)), 1);
      const candidate = await b.load({ ...models.spec('tiny-mlp-fp32'), version: 'candidate' }).finally(() => clearInterval(sampler));
      expect(seen.has(own + 10)).toBe(true);
      expect(niceOfThreads().every((n) => n === own)).toBe(true);
      expect((await candidate.infer([floatInput(1, 16)]))[0]?.shape).toEqual([1, 5]);
    } finally {
      await b.close();
    }
  });

  it('falls back to CPU when a (simulated) GPU machine lists CUDA and TensorRT but their libraries fail to load', async () => {
    // This machine has no GPU. The probe claims one, so the worker really asks onnxruntime for
    // TensorRT and CUDA, each throws for lack of its libraries, and the load walks on to CPU.
    const gpuMachine = new OnnxRuntimeBackend({ availableProviders: () => ['tensorrt', 'cuda', 'cpu'] });
    try {
      const loaded = (await gpuMachine.load(models.spec('tiny-mlp-fp32', { providers: ['tensorrt', 'cuda', 'cpu'] })));
      expect(loaded.provider).toBe('cpu');
      expect(loaded.fallbacks.map((f) => f.provider)).toEqual(['tensorrt', 'cuda']);
      expect(loaded.fallbacks.every((f) => f.error.length > 0)).toBe(true);
      expect((await loaded.infer([floatInput(1, 16)]))[0]?.shape).toEqual([1, 5]);
    } finally {
      await gpuMachine.close();
    }
  });

  it('never tries a provider the probe does not list', async () => {
    const cpuOnly = new OnnxRuntimeBackend({ availableProviders: () => ['cpu'] });
    try {
      const loaded = await cpuOnly.load(models.spec('tiny-mlp-fp32', { providers: ['cuda', 'cpu'] }));
      expect(loaded.fallbacks).toEqual([]);
      expect(await codeOf(cpuOnly.load(models.spec('tiny-mlp-fp32', { providers: ['cuda'] })))).toBe('FLT_INFER_LOAD_FAILED');
    } finally {
      await cpuOnly.close();
    }
  });

  it('rejects an unloadable, a truncated and a missing model file with FLT_INFER_LOAD_FAILED', async () => {
    const truncated = join(models.dir, 'truncated.onnx');
    await writeCorruptedModel(models.path('tiny-mlp-fp32'), truncated, 'truncate');
    const notOnnx = join(models.dir, 'not-onnx.onnx');
    writeFileSync(notOnnx, 'this is not a protobuf');
    for (const path of [models.path('mnist-edge-int8-unloadable'), truncated, notOnnx, join(models.dir, 'missing.onnx')]) {
      const err = await backend.load({ ...models.spec('tiny-mlp-fp32'), path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FlotillaError);
      expect((err as FlotillaError).code).toBe('FLT_INFER_LOAD_FAILED');
      expect((err as FlotillaError).details).toMatchObject({ attempts: [{ provider: 'cpu' }] });
    }
  });

  it('rejects inputs that do not match the declared inputs with FLT_INFER_BAD_INPUT', async () => {
    const loaded = await backend.load(models.spec('tiny-mlp-fp32'));
    try {
      const good = floatInput(2, 16);
      const cases: Tensor[][] = [
        [],
        [{ ...good, name: 'other' }],
        [good, good],
        [{ ...good, datatype: 'FP64', data: new Float64Array(32) }],
        [{ ...good, shape: [2, 15] }],
        [{ ...good, shape: [32] }],
        [{ ...good, shape: [3, 16] }],
        [{ ...good, shape: [-1, 16] }],
        [{ ...good, data: new Int32Array(32) }],
      ];
      for (const inputs of cases) expect(await codeOf(loaded.infer(inputs))).toBe('FLT_INFER_BAD_INPUT');
      expect((await loaded.infer([good]))[0]?.shape).toEqual([2, 5]);
    } finally {
      await loaded.unload();
    }
  });

  it('fails requests in flight with FLT_INFER_WORKER_EXITED when the worker dies, then restarts it and serves again', async () => {
    const crashes: string[] = [];
    const b = new OnnxRuntimeBackend({ events: { onWorkerExit: (e) => crashes.push(e.error.code) } });
    try {
      const loaded = await b.load(models.spec('heavy-conv-fp32'));
      // About 10 ms each: the worker is still busy with them when it is killed.
      const inFlight = Array.from({ length: 5 }, () => loaded.infer([{ name: 'input', datatype: 'FP32', shape: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) }]));
      await loaded.killWorker();
      const codes = await Promise.all(inFlight.map(codeOf));
      expect(codes.every((c) => c === 'resolved' || c === 'FLT_INFER_WORKER_EXITED')).toBe(true);
      expect(codes).toContain('FLT_INFER_WORKER_EXITED');
      expect(crashes).toEqual(['FLT_INFER_WORKER_EXITED']);
      const after = await loaded.infer([{ name: 'input', datatype: 'FP32', shape: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) }]);
      expect(after[0]?.shape).toEqual([1, 10]);
      expect(loaded.state).toBe('serving');
      expect(loaded.workerRestarts).toBe(1);
    } finally {
      await b.close();
    }
  });

  it('marks a model failed once its worker has died more often than allowed', async () => {
    const b = new OnnxRuntimeBackend({ maxRestarts: 0 });
    try {
      const loaded = await b.load(models.spec('tiny-mlp-fp32'));
      await loaded.killWorker();
      await expect.poll(() => loaded.state).toBe('failed');
      expect(await codeOf(loaded.infer([floatInput(1, 16)]))).toBe('FLT_INFER_UNAVAILABLE');
    } finally {
      await b.close();
    }
  });

  it('unload waits for requests in flight, then refuses new ones; unloading twice is safe', async () => {
    const loaded: LoadedModel = await backend.load(models.spec('mnist-edge-int8'));
    const inFlight = loaded.infer([floatInput(32, 784)]);
    const unloading = loaded.unload();
    expect(await codeOf(loaded.infer([floatInput(1, 784)]))).toBe('FLT_INFER_UNAVAILABLE');
    expect((await inFlight)[0]?.shape).toEqual([32, 10]);
    await unloading;
    await loaded.unload();
  });
});
