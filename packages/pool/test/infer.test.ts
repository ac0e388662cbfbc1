import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH_HEADER } from '@flotilla/kserve';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digits, directRun, expectClose, makeRepository, metricValue, MODEL, startWorker } from './helpers.ts';

const path = `/v2/models/${MODEL}/infer`;
const jsonBody = (rows: Float32Array[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...extra, inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 784], data: rows.flatMap((r) => Array.from(r)) }] });

describe('pool worker inference', () => {
  it('answers JSON and binary-extension requests with what session.run gives for the same digits', async () => {
    const worker = await startWorker(await makeRepository());
    const rows = await digits(3);
    const expected = await directRun(rows);

    const json = await worker.app.inject({ method: 'POST', url: path, payload: jsonBody(rows, { id: 'j1' }), headers: { 'content-type': 'application/json' } });
    expect(json.statusCode).toBe(200);
    const fromJson = decodeInferResponse(json.body);
    expect(fromJson).toMatchObject({ model_name: MODEL, model_version: '1', id: 'j1' });
    expect(fromJson.outputs[0]?.shape).toEqual([3, 10]);
    expectClose(fromJson.outputs[0]?.data as Float32Array, expected);

    const data = new Float32Array(3 * 784);
    rows.forEach((r, i) => data.set(r, i * 784));
    const enc = encodeInferRequest({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 784], data }], binaryOutput: true }, { binaryInputs: true });
    const bin = await worker.app.inject({
      method: 'POST',
      url: `/v2/models/${MODEL}/versions/1/infer`,
      payload: Buffer.from(enc.body as Uint8Array),
      headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH_HEADER]: String(enc.headerLength) },
    });
    expect(bin.statusCode).toBe(200);
    expect(bin.headers['content-type']).toBe('application/octet-stream');
    const fromBinary = decodeInferResponse(bin.rawPayload, { headerLength: bin.headers[HEADER_LENGTH_HEADER] as string });
    // Same bytes out of the same session: binary output is exact.
    expect(Array.from(fromBinary.outputs[0]?.data as Float32Array)).toEqual(Array.from(fromJson.outputs[0]?.data as Float32Array));
  });

  it('gives every concurrent request the rows it would get alone, while stacking them into shared runs', async () => {
    // A long delay so the requests surely meet in the queue; maxBatchSize ends each batch early.
    const worker = await startWorker(await makeRepository(), { batching: { maxBatchSize: 8, maxQueueDelayUs: 200_000 } });
    const rows = await digits(24);
    const expected = await directRun(rows);
    const answers = await Promise.all(
      rows.map((r) => worker.app.inject({ method: 'POST', url: path, payload: jsonBody([r]), headers: { 'content-type': 'application/json' } })),
    );
    answers.forEach((a, i) => {
      expect(a.statusCode).toBe(200);
      expectClose(decodeInferResponse(a.body).outputs[0]?.data as Float32Array, expected.subarray(i * 10, (i + 1) * 10));
    });
    const runs = await metricValue(worker, 'flotilla_pool_session_runs_total', { model: MODEL });
    expect(runs).toBeLessThan(24);
    expect(await metricValue(worker, 'flotilla_pool_requests_total', { model: MODEL, status: '200' })).toBe(24);
  });

  it('refuses with 429 FLT_POOL_QUEUE_FULL and Retry-After once the queue is full, and still answers the queued request', async () => {
    const worker = await startWorker(await makeRepository(), { batching: { maxQueueSize: 1, maxQueueDelayUs: 1_000_000 } });
    const [digit] = await digits(1);
    const first = worker.app.inject({ method: 'POST', url: path, payload: jsonBody([digit as Float32Array]) });
    // Let the first request reach the queue.
    for (let i = 0; i < 50 && (await metricValue(worker, 'flotilla_pool_queue_depth', { model: MODEL })) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await metricValue(worker, 'flotilla_pool_queue_depth', { model: MODEL })).toBe(1);
    const refused = await worker.app.inject({ method: 'POST', url: path, payload: jsonBody([digit as Float32Array]) });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'FLT_POOL_QUEUE_FULL' });
    expect(refused.headers['retry-after']).toBe('1');
    expect((await first).statusCode).toBe(200);
  });

  it('refuses a request with more rows than maxBatchSize, or the wrong shape, with a coded 400', async () => {
    const worker = await startWorker(await makeRepository(), { batching: { maxBatchSize: 2 } });
    const rows = await digits(3);
    const tooMany = await worker.app.inject({ method: 'POST', url: path, payload: jsonBody(rows) });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json()).toMatchObject({ code: 'FLT_INFER_BAD_INPUT' });
    const wrong = await worker.app.inject({
      method: 'POST',
      url: path,
      payload: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }),
    });
    expect(wrong.json()).toMatchObject({ code: 'FLT_INFER_BAD_INPUT' });
    const unknown = await worker.app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: '{}' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'FLT_INFER_UNKNOWN_MODEL' });
    expect(await metricValue(worker, 'flotilla_pool_requests_total', { model: '', status: '404' })).toBe(1);
  });

  it('answers arbitrary bodies with a coded 4xx and keeps serving (fuzz)', async () => {
    const worker = await startWorker(await makeRepository());
    const [digit] = await digits(1);
    const tensor = fc.record(
      {
        name: fc.oneof(fc.constant('input'), fc.string({ maxLength: 8 })),
        datatype: fc.oneof(fc.constantFrom('FP32', 'FP64', 'INT64', 'BYTES', 'BOOL'), fc.string({ maxLength: 6 })),
        shape: fc.oneof(fc.constant([1, 784]), fc.array(fc.integer({ min: -2, max: 1000 }), { maxLength: 4 })),
        data: fc.oneof(fc.constant(Array.from(digit as Float32Array)), fc.array(fc.oneof(fc.double(), fc.string(), fc.boolean(), fc.constant(null)), { maxLength: 8 })),
        parameters: fc.option(fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(fc.integer(), fc.string({ maxLength: 5 }))), { nil: undefined }),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ id: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }), inputs: fc.array(tensor, { maxLength: 3 }), outputs: fc.option(fc.array(fc.record({ name: fc.string({ maxLength: 12 }) }), { maxLength: 2 }), { nil: undefined }) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    );
    const header = fc.option(fc.oneof(fc.integer({ min: -5, max: 5000 }).map(String), fc.string({ maxLength: 6 })), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(body, header, async (payload, headerLength) => {
        const res = await worker.app.inject({
          method: 'POST',
          url: path,
          payload,
          headers: { 'content-type': 'application/json', ...(headerLength !== undefined && { [HEADER_LENGTH_HEADER]: headerLength }) },
        });
        if (res.statusCode === 200) return;
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.json().code).toMatch(/^FLT_/);
      }),
      { numRuns: 150 },
    );
    const ok = await worker.app.inject({ method: 'POST', url: path, payload: jsonBody([digit as Float32Array]) });
    expect(ok.statusCode).toBe(200);
  });

  it('serves KServe v2 health and model metadata, and the Triton-style model config', async () => {
    const worker = await startWorker(await makeRepository());
    expect((await worker.app.inject('/v2')).json()).toMatchObject({ name: 'flotilla-pool', extensions: ['binary_tensor_data', 'model_repository'] });
    expect((await worker.app.inject('/v2/health/live')).statusCode).toBe(200);
    expect((await worker.app.inject('/v2/health/ready')).statusCode).toBe(200);
    expect((await worker.app.inject(`/v2/models/${MODEL}/versions/1/ready`)).statusCode).toBe(200);
    expect((await worker.app.inject(`/v2/models/${MODEL}`)).json()).toEqual({
      name: MODEL,
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }],
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }],
    });
    expect((await worker.app.inject(`/v2/models/${MODEL}/config`)).json()).toMatchObject({ max_batch_size: 32, dynamic_batching: { max_queue_delay_microseconds: 1000 } });
    const metrics = await worker.app.inject('/metrics');
    expect(metrics.body).toContain('flotilla_pool_queue_depth{model="mnist-cloud"} 0');
  });
});
