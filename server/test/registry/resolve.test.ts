import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inventory } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, enrollBody, startServer, type TestServer } from '../helpers/server.ts';
import { api, buildTinyModels, draftWithVariants, type Api } from './fixtures.ts';

const base: Omit<Inventory, 'arch' | 'gpu' | 'executionProviders'> = {
  os: { platform: 'linux', release: '5.15' },
  cpu: { model: 'test', cores: 4 },
  memoryBytes: 8e9,
  disk: { path: '/var/lib/flotilla', totalBytes: 64e9, freeBytes: 32e9 },
  agentVersion: '0.1.0',
};
const cpuOnly: Inventory = { ...base, arch: 'x86_64', gpu: null, executionProviders: ['cpu'] };
const orin: Inventory = {
  ...base,
  arch: 'aarch64',
  gpu: { name: 'Orin', computeCapability: '8.7' },
  tensorrtVersion: '8.6.2.3',
  jetpackVersion: '6.0',
  cudaVersion: '12.2',
  executionProviders: ['tensorrt', 'cuda', 'cpu'],
};

describe('variant resolution', () => {
  let t: TestServer;
  let a: Api;
  let built: Awaited<ReturnType<typeof buildTinyModels>>;

  async function enrollWith(id: string, inventory: Inventory | null) {
    await t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody(id, inventory ? { inventory } : {}) });
    await t.server.http.inject({ method: 'POST', url: `/v1/devices/${id}/accept`, headers: auth(ADMIN_TOKEN) });
  }

  beforeAll(async () => {
    built = await buildTinyModels();
    t = await startServer();
    a = api(t);
    await draftWithVariants(a, 'tiny', '1.0.0', built);
    const variants = '/v1/models/tiny/versions/1.0.0/variants';
    for (const [id, cc] of [['orin-trt-fp16', '8.7'], ['xavier-trt-fp16', '7.2']] as const) {
      await a.call('POST', variants, {
        id,
        format: 'tensorrt-plan',
        precision: 'fp16',
        constraints: { arch: ['arm64'], computeCapability: cc, tensorrtVersion: '8.6', jetpackVersion: '6' },
      });
      // A TensorRT engine cannot be built here; its bytes stand in for one, the registry does not look inside.
      expect((await a.upload(`${variants}/${id}/artifact`, randomBytes(4096))).status).toBe(200);
    }
    expect((await a.call('POST', '/v1/models/tiny/versions/1.0.0/publish', {})).status).toBe(200);
    await enrollWith('cpu-box', cpuOnly);
    await enrollWith('orin-1', orin);
    await enrollWith('no-inventory', null);
  });
  afterAll(async () => {
    await t?.close();
    built?.cleanup();
  });

  it('picks the int8 CPU build for a CPU-only device and says why', async () => {
    const r = await a.call('GET', '/v1/models/tiny/versions/1.0.0/resolve?device=cpu-box');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ device: 'cpu-box', provider: 'cpu', variant: { id: 'cpu-int8', precision: 'int8' } });
    expect(r.json.explanation.ranking).toEqual(['cpu-int8', 'onnx-fp32']);
    const rejected = r.json.explanation.candidates.filter((c: { accepted: boolean }) => !c.accepted).map((c: { id: string }) => c.id);
    expect(rejected.sort()).toEqual(['orin-trt-fp16', 'xavier-trt-fp16']);
    expect(r.json.explanation.why).toMatch(/cpu-int8 chosen/);
  });

  it('picks the TensorRT plan built for a Jetson Orin and lists the rejected plan with its reasons', async () => {
    const r = await a.call('GET', '/v1/models/tiny/versions/1.0.0/resolve?device=orin-1');
    expect(r.json).toMatchObject({ provider: 'tensorrt', variant: { id: 'orin-trt-fp16', format: 'tensorrt-plan' } });
    const xavier = r.json.explanation.candidates.find((c: { id: string }) => c.id === 'xavier-trt-fp16');
    expect(xavier.accepted).toBe(false);
    expect(xavier.reasons.join(' ')).toMatch(/7\.2/);
    expect(r.json.explanation.why).toMatch(/xavier-trt-fp16 rejected/);
  });

  it('answers a what-if inventory, and 409 FLT_OTA_INCOMPATIBLE with the explanation when nothing fits', async () => {
    const whatIf = await a.call('POST', '/v1/models/tiny/versions/1.0.0/resolve', {
      inventory: { arch: 'arm64', gpu: { name: 'Xavier', computeCapability: '7.2' }, tensorrtVersion: '8.6.1', jetpackVersion: '6.0', executionProviders: ['tensorrt', 'cpu'] },
    });
    expect(whatIf.json).toMatchObject({ device: null, variant: { id: 'xavier-trt-fp16' } });

    await a.call('POST', '/v1/models', { name: 'gpu-only' });
    await a.call('POST', '/v1/models/gpu-only/versions', { version: '1', metadata: { inputs: built.fp32.card.inputs, outputs: built.fp32.card.outputs } });
    await a.call('POST', '/v1/models/gpu-only/versions/1/variants', { id: 'cuda', format: 'onnx', precision: 'fp16', constraints: { executionProvider: 'cuda' } });
    await a.upload('/v1/models/gpu-only/versions/1/variants/cuda/artifact', built.fp32.bytes);
    const none = await a.call('GET', '/v1/models/gpu-only/versions/1/resolve?device=cpu-box');
    expect([none.status, none.json.code]).toEqual([409, 'FLT_OTA_INCOMPATIBLE']);
    expect(none.json.details.explanation.candidates[0]).toMatchObject({ id: 'cuda', accepted: false });
  });

  it('refuses a device without an inventory and an unknown device', async () => {
    expect((await a.call('GET', '/v1/models/tiny/versions/1.0.0/resolve?device=no-inventory')).json.code).toBe('FLT_REGISTRY_NO_INVENTORY');
    expect((await a.call('GET', '/v1/models/tiny/versions/1.0.0/resolve?device=ghost')).json.code).toBe('FLT_DEVICE_NOT_FOUND');
  });
});
