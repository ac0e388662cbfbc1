import { afterEach, describe, expect, it } from 'vitest';
import { CloudClient } from '../../src/escalation/cloud-client.ts';
import { CLOUD_ANSWER, input } from './fixtures.ts';
import { startTestPool, type TestPool } from './kserve-test-pool.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

async function pool(): Promise<TestPool> {
  const p = await startTestPool(() => CLOUD_ANSWER());
  cleanups.push(() => p.close());
  return p;
}

function client(opts: ConstructorParameters<typeof CloudClient>[0] = {}): CloudClient {
  const c = new CloudClient({ probeIntervalMs: 0, ...opts });
  cleanups.push(() => c.close());
  return c;
}

let n = 0;
const request = (routes: Array<{ pool: string; endpoints: string[] }>) => ({ model: 'digits', inputs: input(0.5), routes, requestId: `r-${++n}`, deadline: Date.now() + 2_000 });

describe('cloud client', () => {
  it('stops sending to an endpoint whose circuit opened, and sends again after a ready probe', async () => {
    const sick = await pool();
    sick.script.push(500, 500);
    const healthy = await pool();
    const c = client({ breaker: { failureThreshold: 2, openMs: 60_000 } });
    const routes = [{ pool: 'p', endpoints: [sick.url, healthy.url] }];
    // Both endpoints are tried in turn; two failures open the sick one's circuit.
    for (let i = 0; i < 4; i++) expect((await c.infer(request(routes))).endpoint).toBe(healthy.url);
    expect(sick.requests.length).toBe(2);
    expect(c.endpoints().find((e) => e.url === sick.url)?.state).toBe('open');
    sick.ready = false;
    await c.probe();
    expect(c.endpoints().find((e) => e.url === sick.url)?.state).toBe('open');
    sick.ready = true;
    await c.probe();
    expect(c.endpoints().find((e) => e.url === sick.url)?.state).toBe('half-open');
    // The trial goes to the recovered endpoint (no latency recorded, nothing in flight) and closes it.
    await c.infer(request(routes));
    expect(sick.requests.length).toBe(3);
    expect(c.endpoints().find((e) => e.url === sick.url)?.state).toBe('closed');
  });

  it('spreads requests across a pool’s healthy endpoints', async () => {
    const a = await pool();
    const b = await pool();
    const c = client();
    const routes = [{ pool: 'p', endpoints: [a.url, b.url] }];
    await Promise.all(Array.from({ length: 8 }, () => c.infer(request(routes))));
    expect(a.requests.length).toBeGreaterThan(0);
    expect(b.requests.length).toBeGreaterThan(0);
  });

  it('sends tensors in the binary extension and asks for binary outputs', async () => {
    const p = await pool();
    const c = client();
    const answer = await c.infer(request([{ pool: 'p', endpoints: [p.url] }]));
    // 16 float32 inputs = 64 raw bytes; a JSON body would spell each number out.
    expect(p.requests[0]!.bytes).toBeLessThan(64 + 400);
    expect(answer.outputs[0]!.data).toBeInstanceOf(Float32Array);
  });

  it('refuses at once after close', async () => {
    const c = client();
    await c.close();
    await c.close();
    await expect(c.infer(request([{ pool: 'p', endpoints: ['http://127.0.0.1:9'] }]))).rejects.toMatchObject({ code: 'FLT_ESCALATION_CLOUD_UNAVAILABLE' });
  });
});
