import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { findWrk, wrkLoad } from '../../../bench/wrk-load.ts';

// wrk is installed by scripts/ensure-wrk.sh, which the CI test command runs first.
const wrk = findWrk();
if (!wrk) throw new Error('wrk is not on PATH: run `bash scripts/ensure-wrk.sh` (as root it installs it)');

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.allSettled(closers.splice(0).map((close) => close()));
});

/** A real server on port 0 that checks what each request carries and answers every fourth one with 500. */
async function countingServer() {
  const seen = { total: 0, ok: 0, failed: 0, wrongBody: 0, headers: new Set<string>() };
  const app = Fastify({ logger: false });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/infer', async (req, reply) => {
    seen.total++;
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : JSON.stringify(req.body);
    if (body !== '{"x":[1,2,3]}') seen.wrongBody++;
    seen.headers.add(`${req.headers['content-type']}|${req.headers['inference-header-content-length'] ?? ''}`);
    if (seen.total % 4 === 0) {
      seen.failed++;
      return reply.code(500).send({ error: 'every fourth' });
    }
    seen.ok++;
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => app.close());
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, seen };
}

const body = Buffer.from('{"x":[1,2,3]}').toString('base64');

describe('wrk load driver (bench:agent:http)', () => {
  it('counts only successful answers as requests and the rest as errors, as the server saw them', async () => {
    const { url, seen } = await countingServer();
    const result = await wrkLoad({ url, path: '/infer', body, concurrency: 4, durationMs: 1000 }, wrk);

    expect(seen.wrongBody).toBe(0);
    expect([...seen.headers]).toEqual(['application/json|']);
    // wrk stops at its deadline with up to `concurrency` answers unread, so the server may count a few more.
    expect(result.requests).toBeGreaterThan(100);
    expect(seen.ok - result.requests).toBeGreaterThanOrEqual(0);
    expect(seen.ok - result.requests).toBeLessThanOrEqual(4);
    expect(result.errors).toBe(result.statuses['status>=400']);
    expect(seen.failed - result.errors).toBeGreaterThanOrEqual(0);
    expect(seen.failed - result.errors).toBeLessThanOrEqual(4);
    expect(result.errors).toBeGreaterThan(0);
    expect(result.rps).toBeCloseTo((result.requests / result.durationMs) * 1000, 6);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    expect(result.p50Ms).toBeGreaterThan(0);
    // The CPU wrk used comes from its parent shell's accounting of it: more than nothing for a second of load.
    expect(result.clientCpuUsPerRequest).toBeGreaterThan(0);
  });

  it('sends a binary-extension request with its inference header length', async () => {
    const { url, seen } = await countingServer();
    const result = await wrkLoad({ url, path: '/infer', body, headerLength: 13, concurrency: 1, durationMs: 1000 }, wrk);
    expect(result.requests).toBeGreaterThan(0);
    expect(seen.wrongBody).toBe(0);
    expect([...seen.headers]).toEqual(['application/octet-stream|13']);
  });

  it('fails with what wrk said when it cannot run', async () => {
    await expect(wrkLoad({ url: 'not a url', path: '/infer', body, concurrency: 1, durationMs: 1000 }, wrk)).rejects.toThrow(/wrk failed/);
  });
});
