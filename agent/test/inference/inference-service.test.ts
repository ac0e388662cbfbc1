import { FlotillaError } from '@flotilla/protocol';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { InferenceService, type InferenceServiceOptions } from '../../src/inference/service/inference-service.ts';
import type { OnnxLoadedModel } from '../../src/inference/onnx/onnx-loaded-model.ts';
import { buildFixtures, floatInput, type BuiltModels } from './model-fixtures.ts';

let models: BuiltModels;

beforeAll(async () => {
  models = await buildFixtures(['tiny-mlp-fp32', 'tiny-mlp-int8-static', 'mnist-edge-int8', 'mnist-edge-int8-bad-golden', 'mnist-edge-int8-unloadable', 'heavy-conv-fp32']);
}, 180_000);

afterAll(() => models?.cleanup());

function service(opts: InferenceServiceOptions = {}): InferenceService {
  const s = new InferenceService(opts);
  onTestFinished(() => s.close());
  return s;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof FlotillaError ? err.code : `not a FlotillaError: ${String(err)}`;
  }
  return 'resolved';
}

const tinyV1 = () => models.spec('tiny-mlp-fp32', { version: '1' });
const tinyV2 = () => models.spec('tiny-mlp-int8-static', { version: '2' });

describe('InferenceService', () => {
  it('serves the active version and reports model, version, provider and latency', async () => {
    const s = service();
    const loaded = await s.load(tinyV1(), { golden: models.card('tiny-mlp-fp32').golden });
    expect(loaded.selfTest?.pass).toBe(true);
    const r = await s.infer('tiny-mlp', [floatInput(3, 16)]);
    expect(r).toMatchObject({ model: 'tiny-mlp', version: '1', provider: 'cpu' });
    expect(r.outputs[0]?.shape).toEqual([3, 5]);
    expect(r.latencyMs).toBeGreaterThan(0);
    expect(s.status()).toMatchObject([{ model: 'tiny-mlp', active: { version: '1', provider: 'cpu', backend: 'onnxruntime' }, previous: null, staged: null, queueDepth: 0 }]);
  });

  it('answers FLT_INFER_UNKNOWN_MODEL for a model or version it does not hold, and FLT_INFER_BAD_INPUT for bad tensors', async () => {
    const s = service();
    await s.load(tinyV1());
    expect(await codeOf(s.infer('nope', [floatInput(1, 16)]))).toBe('FLT_INFER_UNKNOWN_MODEL');
    expect(await codeOf(s.infer('tiny-mlp', [floatInput(1, 16)], { version: '9' }))).toBe('FLT_INFER_UNKNOWN_MODEL');
    expect(await codeOf(s.infer('tiny-mlp', [floatInput(1, 15)]))).toBe('FLT_INFER_BAD_INPUT');
    expect(await s.registry.getSingleMetricAsString('flotilla_agent_inference_errors_total')).toContain('code="FLT_INFER_BAD_INPUT"');
  });

  it('keeps serving the active version when a candidate fails to load or fails its golden self-test', async () => {
    const s = service();
    await s.load(models.spec('mnist-edge-int8'));
    const edge = models.card('mnist-edge-int8');
    expect(await codeOf(s.stage(models.spec('mnist-edge-int8-unloadable'), { golden: edge.golden }))).toBe('FLT_INFER_LOAD_FAILED');
    const bad = await s.stage(models.spec('mnist-edge-int8-bad-golden'), { golden: edge.golden }).catch((e: unknown) => e as FlotillaError);
    expect(bad).toBeInstanceOf(FlotillaError);
    expect((bad as FlotillaError).code).toBe('FLT_INFER_SELFTEST_FAILED');
    expect((bad as FlotillaError).details).toMatchObject({ pass: false });
    expect((await s.infer('mnist-edge', [floatInput(1, 784)])).version).toBe('1.0.0');
    expect(s.status()[0]).toMatchObject({ staged: null, previous: null });
    expect(await codeOf(Promise.resolve().then(() => s.activate('mnist-edge')))).toBe('FLT_INFER_SLOT_EMPTY');
  });

  it('hot-swaps under concurrent load with zero failed requests, every answer from the old or the new version', async () => {
    const s = service();
    await s.load(tinyV1());
    const versions: string[] = [];
    const failures: unknown[] = [];
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop) {
        await s.infer('tiny-mlp', [floatInput(1, 16)]).then((r) => versions.push(r.version), (e: unknown) => failures.push(e));
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await s.stage(tinyV2(), { golden: models.card('tiny-mlp-int8-static').golden });
    const swap = s.activate('tiny-mlp');
    expect(swap).toEqual({ model: 'tiny-mlp', from: '1', to: '2' });
    const seen = versions.length;
    await expect.poll(() => versions.length, { timeout: 10_000 }).toBeGreaterThan(seen + 20);
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(new Set(versions)).toEqual(new Set(['1', '2']));
    // Once v2 has answered, the only v1 answers still to come are requests started before the
    // switch: at most one per other client.
    expect(versions.slice(versions.indexOf('2')).filter((v) => v === '1').length).toBeLessThan(8);
    expect(s.status()[0]).toMatchObject({ active: { version: '2' }, previous: { version: '1' } });
    expect(s.health('tiny-mlp')).toMatchObject({ version: '2', errors: 0 });
    expect(s.health('tiny-mlp')?.requests).toBeGreaterThan(0);
    expect(await s.registry.getSingleMetricAsString('flotilla_agent_inference_swaps_total')).toContain('model="tiny-mlp"} 2');
  });

  it('rolls back to the previous version, which stayed loaded, and can still serve it by version', async () => {
    const s = service();
    await s.load(tinyV1());
    await s.load(tinyV2());
    expect((await s.infer('tiny-mlp', [floatInput(1, 16)], { version: '1' })).version).toBe('1');
    expect(s.rollback('tiny-mlp')).toEqual({ model: 'tiny-mlp', from: '2', to: '1' });
    expect((await s.infer('tiny-mlp', [floatInput(1, 16)])).version).toBe('1');
    expect(s.status()[0]).toMatchObject({ active: { version: '1' }, previous: { version: '2' } });
    expect(s.health('tiny-mlp')).toMatchObject({ version: '1', requests: 1, errors: 0 });
    expect(await s.registry.getSingleMetricAsString('flotilla_agent_inference_rollbacks_total')).toContain('model="tiny-mlp"} 1');
    await s.unload('tiny-mlp', '2');
    expect(s.status()[0]).toMatchObject({ active: { version: '1' }, previous: null });
    expect(await codeOf(Promise.resolve().then(() => s.rollback('tiny-mlp')))).toBe('FLT_INFER_SLOT_EMPTY');
  });

  it('fails in-flight requests with a code when a worker dies and serves again after the restart', async () => {
    const s = service();
    await s.load(models.spec('heavy-conv-fp32'));
    const input = { name: 'input', datatype: 'FP32' as const, shape: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) };
    const inFlight = Array.from({ length: 4 }, () => s.infer('heavy-conv', [input]));
    const active = s['hosts'].get('heavy-conv')?.activeModel as OnnxLoadedModel;
    await active.killWorker();
    const codes = await Promise.all(inFlight.map(codeOf));
    expect(codes.every((c) => c === 'resolved' || c === 'FLT_INFER_WORKER_EXITED')).toBe(true);
    expect(codes).toContain('FLT_INFER_WORKER_EXITED');
    expect((await s.infer('heavy-conv', [input])).outputs[0]?.shape).toEqual([1, 10]);
    expect(await s.registry.getSingleMetricAsString('flotilla_agent_inference_worker_restarts_total')).toContain('model="heavy-conv"');
  });

  it('gives the same answers with micro-batching as without', async () => {
    const plain = service();
    const batched = service({ batching: { maxBatchSize: 16, maxDelayUs: 2000 } });
    await plain.load(models.spec('mnist-edge-int8'));
    await batched.load(models.spec('mnist-edge-int8'));
    const requests = Array.from({ length: 12 }, (_, i) => [floatInput(1 + (i % 3), 784, i + 1)]);
    const expected = await Promise.all(requests.map((r) => plain.infer('mnist-edge', r)));
    const got = await Promise.all(requests.map((r) => batched.infer('mnist-edge', r)));
    got.forEach((g, i) => {
      expect(g.outputs[0]?.shape).toEqual(expected[i]?.outputs[0]?.shape);
      const a = g.outputs[0]?.data as Float32Array;
      const b = expected[i]?.outputs[0]?.data as Float32Array;
      // Same kernels, same rows: batching may only change float summation order.
      a.forEach((v, k) => expect(v).toBeCloseTo(b[k] as number, 5));
    });
    const rows = await batched.registry.getSingleMetricAsString('flotilla_agent_inference_batch_rows');
    const batches = Number(/flotilla_agent_inference_batch_rows_count\{model="mnist-edge"\} (\d+)/.exec(rows)?.[1]);
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(requests.length);
  });

  it('keeps the event loop turning while heavy inference runs back to back', async () => {
    const s = service();
    await s.load(models.spec('heavy-conv-fp32'));
    let pings = 0;
    let running = true;
    const ping = (): void => {
      pings++;
      if (running) setImmediate(ping);
    };
    setImmediate(ping);
    const input = { name: 'input', datatype: 'FP32' as const, shape: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) };
    for (let i = 0; i < 5; i++) await s.infer('heavy-conv', [input]);
    running = false;
    expect(pings).toBeGreaterThan(5);
  });

  it('exposes the duration histogram and queue depth on the injected registry, and closes twice safely', async () => {
    const registry = new Registry();
    const s = new InferenceService({ registry });
    await s.load(tinyV1());
    await s.infer('tiny-mlp', [floatInput(1, 16)]);
    const text = await registry.metrics();
    expect(text).toContain('flotilla_agent_inference_duration_seconds_count{model="tiny-mlp",version="1",provider="cpu"} 1');
    expect(text).toContain('flotilla_agent_inference_queue_depth{model="tiny-mlp"} 0');
    await Promise.all([s.close(), s.close()]);
    await s.close();
    expect(await codeOf(s.infer('tiny-mlp', [floatInput(1, 16)]))).toBe('FLT_INFER_UNAVAILABLE');
    expect(s.status()).toEqual([]);
  });
});
