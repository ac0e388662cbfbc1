import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeInferResponse } from '@flotilla/kserve';
import { describe, expect, it } from 'vitest';
import { addVersion, digits, makeRepository, MODEL, startWorker } from './helpers.ts';

const infer = async (worker: Awaited<ReturnType<typeof startWorker>>, url = `/v2/models/${MODEL}/infer`) => {
  const [digit] = await digits(1);
  return worker.app.inject({ method: 'POST', url, payload: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array.from(digit as Float32Array) }] }) });
};

describe('model repository extension', () => {
  it('lists, loads and unloads models of the repository folder', async () => {
    const repo = await makeRepository();
    const worker = await startWorker(repo, { startupModels: [] });
    expect((await worker.app.inject({ method: 'POST', url: '/v2/repository/index' })).json()).toEqual([{ name: MODEL, state: 'UNAVAILABLE', reason: 'not loaded' }]);
    expect((await infer(worker)).statusCode).toBe(404);

    expect((await worker.app.inject({ method: 'POST', url: `/v2/repository/models/${MODEL}/load` })).statusCode).toBe(200);
    expect((await worker.app.inject({ method: 'POST', url: '/v2/repository/index', payload: '{"ready":true}' })).json()).toEqual([{ name: MODEL, version: '1', state: 'READY' }]);
    expect((await infer(worker)).statusCode).toBe(200);

    expect((await worker.app.inject({ method: 'POST', url: `/v2/repository/models/${MODEL}/unload` })).statusCode).toBe(200);
    const after = await infer(worker);
    expect(after.statusCode).toBe(503);
    expect(after.json()).toMatchObject({ code: 'FLT_KSERVE_MODEL_NOT_READY' });
    expect((await worker.app.inject({ method: 'POST', url: '/v2/repository/index' })).json()).toEqual([{ name: MODEL, state: 'UNAVAILABLE', reason: 'unloaded' }]);
  });

  it('serves the newest version by default, and picks up a new version on reload', async () => {
    const repo = await makeRepository(['1', '2']);
    const worker = await startWorker(repo);
    expect(decodeInferResponse((await infer(worker)).body).model_version).toBe('2');
    expect((await infer(worker, `/v2/models/${MODEL}/versions/1/infer`)).json()).toMatchObject({ code: 'FLT_INFER_UNKNOWN_MODEL' });
    await addVersion(repo, MODEL, '10');
    expect((await worker.app.inject({ method: 'POST', url: `/v2/repository/models/${MODEL}/load` })).statusCode).toBe(200);
    expect(decodeInferResponse((await infer(worker)).body).model_version).toBe('10');
  });

  it('serves every version with versionPolicy all, and applies the model config.json batching overrides', async () => {
    const repo = await makeRepository(['1', '2'], { versionPolicy: 'all', maxBatchSize: 4, instances: 2 });
    const worker = await startWorker(repo);
    expect((await worker.app.inject(`/v2/models/${MODEL}`)).json()).toMatchObject({ versions: ['1', '2'] });
    expect(decodeInferResponse((await infer(worker, `/v2/models/${MODEL}/versions/1/infer`)).body).model_version).toBe('1');
    expect((await worker.app.inject(`/v2/models/${MODEL}/config`)).json()).toMatchObject({ max_batch_size: 4, instance_group: [{ count: 2, kind: 'KIND_CPU' }] });
  });

  it('refuses to load what is not in the repository, bad names and bad model configs, with codes', async () => {
    const repo = await makeRepository();
    const worker = await startWorker(repo);
    const missing = await worker.app.inject({ method: 'POST', url: '/v2/repository/models/absent/load' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'FLT_POOL_MODEL_NOT_IN_REPOSITORY' });
    const badName = await worker.app.inject({ method: 'POST', url: '/v2/repository/models/..%2Fetc/load' });
    expect(badName.json()).toMatchObject({ code: 'FLT_KSERVE_NAME_INVALID' });

    await mkdir(join(repo, 'broken', '1'), { recursive: true });
    await writeFile(join(repo, 'broken', '1', 'model.onnx'), 'not a model');
    const broken = await worker.app.inject({ method: 'POST', url: '/v2/repository/models/broken/load' });
    expect(broken.statusCode).toBe(422);
    expect(broken.json()).toMatchObject({ code: 'FLT_INFER_LOAD_FAILED' });

    await writeFile(join(repo, MODEL, 'config.json'), JSON.stringify({ maxBatchSize: 4, preferredBatchSizes: [8] }));
    const badConfig = await worker.app.inject({ method: 'POST', url: `/v2/repository/models/${MODEL}/load` });
    expect(badConfig.statusCode).toBe(422);
    expect(badConfig.json()).toMatchObject({ code: 'FLT_POOL_MODEL_CONFIG_INVALID' });
    // The failed reload leaves the version already served in place.
    expect((await infer(worker)).statusCode).toBe(200);
    const index = (await worker.app.inject({ method: 'POST', url: '/v2/repository/index' })).json() as Array<{ name: string; state: string }>;
    expect(index.find((e) => e.name === 'broken')).toMatchObject({ state: 'UNAVAILABLE' });
  });
});
