import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { EscalationMetrics } from '../../src/escalation/escalation-metrics.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { connect } from 'node:net';
import { buildLocalApi } from '../../src/local-api/build-local-api.ts';
import { startLocalApi } from '../../src/local-api/start-local-api.ts';
import { CLOUD_ANSWER, makeEscalator } from './fixtures.ts';
import { startBlackhole, startTestPool } from './kserve-test-pool.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

const tensors = (p: number): Tensor[] => [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(p, 0, 0, 0) }];
const body = (p: number) => ({ id: 'app-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [p, 0, 0, 0] }] });

describe('local KServe API through the escalator', () => {
  it('tells the caller in the response parameters where each request was answered and why', async () => {
    const pool = await startTestPool(() => CLOUD_ANSWER());
    cleanups.push(() => pool.close());
    const { escalator } = makeEscalator({ maxProbBelow: 0.8 }, [{ pool: 'p', endpoints: [pool.url] }]);
    const app = buildLocalApi({ inference: escalator });
    cleanups.push(() => app.close());

    const edge = await app.inject({ method: 'POST', url: '/v2/models/digits/infer', payload: body(0.95) });
    expect(edge.statusCode).toBe(200);
    expect(edge.json()).toMatchObject({ id: 'app-1', parameters: { flotilla_answered_by: 'edge', flotilla_policy: 'confident' } });

    const cloud = await app.inject({ method: 'POST', url: '/v2/models/digits/infer', payload: body(0.4) });
    expect(cloud.json()).toMatchObject({ id: 'app-1', parameters: { flotilla_answered_by: 'cloud', flotilla_policy: 'max-prob', flotilla_threshold: 0.8 }, outputs: [{ data: [0, 1, 0] }] });
    // The application's own id stays its own; the cloud saw the escalator's idempotency id.
    expect(pool.requests[0]!.id).not.toBe('app-1');
  });

  it('counts escalations by model version and who answered, and not the requests the edge kept', async () => {
    const pool = await startTestPool(() => CLOUD_ANSWER());
    cleanups.push(() => pool.close());
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const registry = new Registry();
    const metrics = new EscalationMetrics(registry);
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 80 }, [{ pool: 'p', endpoints: [pool.url] }], { escalator: { metrics } });
    await escalator.infer('digits', tensors(0.95));
    await escalator.infer('digits', tensors(0.4));
    escalator.configure({ digits: { policy: { maxProbBelow: 0.8, budgetMs: 80 }, routes: [{ pool: 'silent', endpoints: [hole.url] }] } });
    await escalator.infer('digits', tensors(0.4));
    const text = await registry.metrics();
    expect(text).toMatch(/flotilla_agent_escalations_total\{model="digits",version="[^"]+",answered_by="cloud"\} 1/);
    expect(text).toMatch(/flotilla_agent_escalations_total\{model="digits",version="[^"]+",answered_by="edge-fallback"\} 1/);
    expect(text).not.toMatch(/answered_by="edge"/);
  });

  it('answers a request whose cloud endpoint is silent with the local result marked edge-fallback', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 80 }, [{ pool: 'silent', endpoints: [hole.url] }]);
    const app = buildLocalApi({ inference: escalator });
    cleanups.push(() => app.close());
    const res = await app.inject({ method: 'POST', url: '/v2/models/digits/infer', payload: body(0.4) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ parameters: { flotilla_answered_by: 'edge-fallback', flotilla_error: 'FLT_ESCALATION_BUDGET_EXCEEDED' } });
  });

  it('calls off the cloud call of a request whose client hangs up before the answer', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    // A budget far longer than the test: only the hang-up can end the cloud call this soon.
    const { escalator } = makeEscalator({ maxProbBelow: 0.8, budgetMs: 60_000 }, [{ pool: 'silent', endpoints: [hole.url] }]);
    const api = await startLocalApi({ inference: escalator, port: 0 });
    cleanups.push(() => api.close());
    const { port } = new URL(api.url);
    const client = connect({ host: '127.0.0.1', port: Number(port) });
    const payload = JSON.stringify(body(0.4));
    client.write(`POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n${payload}`);
    await expect.poll(() => hole.open(), { timeout: 5000 }).toBe(1);
    client.destroy();
    await expect.poll(() => hole.open(), { timeout: 5000 }).toBe(0);
  });
});
