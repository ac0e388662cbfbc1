import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH_HEADER, KSERVE_ERROR_CODES, KSERVE_ERROR_STATUS } from '@flotilla/kserve';
import { ERRORS } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import { InferenceService } from '../../src/inference/index.ts';
import { buildLocalApi, startLocalApi, type LocalInference } from '../../src/local-api/index.ts';
import { goldenInput, goldenOutput, tinyMlp } from './models.ts';

let service: InferenceService;
let app: FastifyInstance;
let card: ModelCard;

beforeAll(async () => {
  const built = await tinyMlp();
  card = built.card;
  service = new InferenceService({ warmupRuns: 1 });
  // Two versions of one model: 1.0.0 ends up in the previous slot, 1.1.0 active.
  await service.load({ model: 'tiny-mlp', version: '1.0.0', path: built.path, format: 'onnx', providers: ['cpu'] });
  await service.load({ model: 'tiny-mlp', version: '1.1.0', path: built.path, format: 'onnx', providers: ['cpu'] });
  const inference: LocalInference = service; // the agent's service is the local API's inference side
  app = buildLocalApi({ inference });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await service?.close();
});

function jsonInfer(extra: Record<string, unknown> = {}) {
  const input = goldenInput(card);
  return { inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, data: input.data }], ...extra };
}

function expectClose(got: ArrayLike<number>, want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThanOrEqual(card.golden.tolerance);
}

describe('server and model metadata', () => {
  it('describes the server and says it is live and ready', async () => {
    const meta = await app.inject({ method: 'GET', url: '/v2' });
    expect(meta.json()).toMatchObject({ name: 'flotilla-agent', extensions: ['binary_tensor_data'] });
    expect((await app.inject({ method: 'GET', url: '/v2/health/live' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode).toBe(200);
  });

  it('answers 503 FLT_NOT_READY on /v2/health/ready while the agent is not ready', async () => {
    const notReady = buildLocalApi({ inference: service, isReady: () => false });
    const res = await notReady.inject({ method: 'GET', url: '/v2/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'FLT_NOT_READY' });
    await notReady.close();
  });

  it('gives model metadata for the active version, and for a named version', async () => {
    const res = await app.inject({ method: 'GET', url: '/v2/models/tiny-mlp' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'tiny-mlp',
      versions: ['1.1.0', '1.0.0'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 16] }],
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 5] }],
    });
    expect((await app.inject({ method: 'GET', url: '/v2/models/tiny-mlp/versions/1.0.0' })).statusCode).toBe(200);
  });

  it('says which models and versions are ready, and 404s the others with a code', async () => {
    expect((await app.inject({ method: 'GET', url: '/v2/models/tiny-mlp/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/models/tiny-mlp/versions/1.0.0/ready' })).statusCode).toBe(200);
    const noVersion = await app.inject({ method: 'GET', url: '/v2/models/tiny-mlp/versions/9.9.9/ready' });
    expect(noVersion.statusCode).toBe(404);
    expect(noVersion.json()).toMatchObject({ code: 'FLT_INFER_UNKNOWN_MODEL', error: expect.any(String) });
    const noModel = await app.inject({ method: 'GET', url: '/v2/models/nope' });
    expect(noModel.statusCode).toBe(404);
    expect(noModel.json()).toMatchObject({ code: 'FLT_INFER_UNKNOWN_MODEL' });
  });

  it('lists loaded versions in the repository index', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/repository/index' });
    expect(res.json()).toEqual([
      { name: 'tiny-mlp', version: '1.1.0', state: 'READY' },
      { name: 'tiny-mlp', version: '1.0.0', state: 'READY' },
    ]);
  });
});

describe('inference', () => {
  it('answers a JSON request with JSON outputs that match the golden outputs', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', payload: jsonInfer({ id: 'r1' }) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/json');
    const body = res.json();
    expect(body).toMatchObject({ model_name: 'tiny-mlp', model_version: '1.1.0', id: 'r1' });
    const want = goldenOutput(card);
    expect(body.outputs[0]).toMatchObject({ name: want.name, datatype: 'FP32', shape: want.shape });
    expectClose(body.outputs[0].data, want.data);
  });

  it('serves the version named in the path', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/versions/1.0.0/infer', payload: jsonInfer() });
    expect(res.json()).toMatchObject({ model_version: '1.0.0' });
  });

  it('takes binary inputs and gives binary outputs when binary_data_output is set', async () => {
    const input = goldenInput(card);
    const encoded = encodeInferRequest(
      { inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, data: Float32Array.from(input.data) }], binaryOutput: true },
      { binaryInputs: true },
    );
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/tiny-mlp/infer',
      headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH_HEADER]: String(encoded.headerLength) },
      payload: Buffer.from(encoded.body as Uint8Array),
    });
    expect(res.statusCode).toBe(200);
    const headerLength = res.headers[HEADER_LENGTH_HEADER] as string;
    expect(Number(headerLength)).toBeGreaterThan(0);
    const header = JSON.parse(res.rawPayload.subarray(0, Number(headerLength)).toString());
    expect(header.outputs[0].parameters.binary_data_size).toBe(goldenOutput(card).data.length * 4);
    const decoded = decodeInferResponse(res.rawPayload, { headerLength });
    expect(decoded.outputs[0]?.data).toBeInstanceOf(Float32Array);
    expectClose(decoded.outputs[0]?.data as Float32Array, goldenOutput(card).data);
  });

  it('lets one output ask for JSON when the request asks for binary', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/tiny-mlp/infer',
      payload: jsonInfer({ parameters: { binary_data_output: true }, outputs: [{ name: 'probabilities', parameters: { binary_data: false } }] }),
    });
    expect(res.headers[HEADER_LENGTH_HEADER]).toBeUndefined();
    expect(res.json().outputs[0].data).toHaveLength(goldenOutput(card).data.length);
  });

  it('refuses an output the model does not have with FLT_KSERVE_UNKNOWN_OUTPUT', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', payload: jsonInfer({ outputs: [{ name: 'logits' }] }) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'FLT_KSERVE_UNKNOWN_OUTPUT' });
  });

  it('refuses inputs that do not fit the model with the service code', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/tiny-mlp/infer',
      payload: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'FLT_INFER_BAD_INPUT' });
  });

  it('refuses an unknown model with 404 and a code', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/other/infer', payload: jsonInfer() });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'FLT_INFER_UNKNOWN_MODEL' });
  });

  it('ties a hang-up signal only to requests that can still be called off', async () => {
    // An onnxruntime model answers from a worker that cannot be recalled: no signal to make.
    expect(service.cancellable('tiny-mlp')).toBe(false);
    const signals: Array<AbortSignal | undefined> = [];
    const spy = (cancellable: LocalInference['cancellable']): LocalInference => ({
      infer: (model, inputs, opts) => {
        signals.push(opts?.signal);
        return service.infer(model, inputs, opts);
      },
      status: () => service.status(),
      ...(cancellable && { cancellable }),
    });
    for (const inference of [spy((m) => service.cancellable(m)), spy(undefined)]) {
      const api = buildLocalApi({ inference });
      const res = await api.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', payload: jsonInfer() });
      expect(res.statusCode).toBe(200);
      await api.close();
    }
    // A LocalInference that does not say gets a signal: a hang-up may matter to it.
    expect(signals[0]).toBeUndefined();
    expect(signals[1]).toBeInstanceOf(AbortSignal);
  });
});

describe('bad bodies', () => {
  it('refuses a body that is not JSON with FLT_KSERVE_MALFORMED, whatever its content type', async () => {
    for (const type of ['application/json', 'text/plain', 'application/x-anything']) {
      const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', headers: { 'content-type': type }, payload: '{"inputs": [' });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'FLT_KSERVE_MALFORMED' });
    }
  });

  it('refuses an empty body and a body with no content type', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer' });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toMatch(/^FLT_KSERVE_/);
  });

  it('refuses a body over the limit with 413 FLT_KSERVE_TOO_LARGE', async () => {
    const small = buildLocalApi({ inference: service, bodyLimit: 1024 });
    const res = await small.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', payload: { inputs: [], pad: 'x'.repeat(2000) } });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'FLT_KSERVE_TOO_LARGE' });
    await small.close();
  });

  it('answers unknown routes with 404 FLT_NOT_FOUND', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/models' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'FLT_NOT_FOUND' });
  });

  it('answers fuzzed bodies with a coded 4xx and keeps serving', async () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify({ inputs: v }))),
      fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v))),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.option(fc.oneof(fc.nat(300).map(String), fc.string({ maxLength: 5 })), { nil: undefined }), async (payload, headerLength) => {
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
        if (headerLength !== undefined) headers[HEADER_LENGTH_HEADER] = headerLength;
        const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', headers, payload });
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.json().code).toMatch(/^FLT_/);
      }),
      { numRuns: 300 },
    );
    expect((await app.inject({ method: 'POST', url: '/v2/models/tiny-mlp/infer', payload: jsonInfer() })).statusCode).toBe(200);
  });
});

describe('listening', () => {
  it('binds to 127.0.0.1 by default and answers over a real socket', async () => {
    const api = await startLocalApi({ inference: service, port: 0 });
    try {
      expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await request(`${api.url}/v2/models/tiny-mlp/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(jsonInfer()),
      });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { outputs: Array<{ data: number[] }> };
      expectClose(body.outputs[0]?.data ?? [], goldenOutput(card).data);
    } finally {
      await api.close();
      await api.close();
    }
  });
});

describe('error catalogue', () => {
  it('matches every code of @flotilla/kserve with the protocol catalogue and its status', () => {
    for (const code of KSERVE_ERROR_CODES) {
      expect(ERRORS[code as keyof typeof ERRORS]?.status).toBe(KSERVE_ERROR_STATUS[code]);
    }
  });
});
