import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildLocalApi } from '../../src/local-api/build-local-api.ts';
import type { LocalInference } from '../../src/local-api/local-inference.ts';

// The metrics route never calls into inference, so an inference that refuses everything is enough here.
const noInference = {
  infer: () => Promise.reject(new Error('not used')),
  status: () => [],
} as unknown as LocalInference;

describe('local API metrics endpoint', () => {
  it('serves the registry it is given in Prometheus text format', async () => {
    const registry = new Registry();
    new Counter({ name: 'flotilla_agent_test_total', help: 'test counter', registers: [registry] }).inc(3);
    const app = buildLocalApi({ inference: noInference, metrics: registry });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('flotilla_agent_test_total 3');
    await app.close();
  });

  it('has no metrics route when no registry is given', async () => {
    const app = buildLocalApi({ inference: noInference });
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    await app.close();
  });
});
