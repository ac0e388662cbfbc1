import { describe, expect, it, onTestFinished } from 'vitest';
import type { EnrollRequest } from '@flotilla/protocol';
import { EnrollClient } from '../src/identity/enroll-client.ts';
import { enrollUntilDone } from '../src/identity/enrollment.ts';
import { startEnrollDouble, type EnrollReply } from './helpers/enroll-double.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { silentLogger } from './helpers/logger.ts';

const request: EnrollRequest = {
  enrollmentToken: 'fleet-token-0123456789',
  deviceId: 'edge-1',
  enrollmentKey: 'k'.repeat(43),
  labels: { site: 'lab' },
};

const accepted: EnrollReply = {
  status: 200,
  body: { status: 'accepted', deviceId: 'edge-1', credential: 'cred-1', mqtt: { tcp: 'mqtt://127.0.0.1:1883' } },
};
const pending = (retryAfterSec: number): EnrollReply => ({ status: 202, body: { status: 'pending', deviceId: 'edge-1', retryAfterSec } });

function loop(url: string, timers: FakeTimers, random = () => 0.5) {
  const client = new EnrollClient(url);
  onTestFinished(() => client.close());
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  return enrollUntilDone({
    client,
    request: () => request,
    timers,
    random,
    backoff: { initialMs: 1000, maxMs: 8000, multiplier: 2 },
    logger: silentLogger,
    signal: abort.signal,
  });
}

describe('enrollment against a test double of POST /v1/enroll', () => {
  it('repeats a pending enrollment with the same key after retryAfterSec (plus jitter) until accepted', async () => {
    const double = await startEnrollDouble((_req, n) => (n < 3 ? pending(10) : accepted));
    const timers = new FakeTimers();
    const done = loop(double.url, timers, () => 0.5);

    for (let i = 0; i < 2; i++) {
      const { ms } = await timers.nextTimer();
      // retryAfterSec is a floor: never earlier, at most 20% later.
      expect(ms).toBeGreaterThanOrEqual(10_000);
      expect(ms).toBeLessThanOrEqual(12_000);
      expect(double.requests).toHaveLength(i + 1);
      timers.advance(ms - 1);
      expect(double.requests).toHaveLength(i + 1);
      timers.advance(1);
    }
    await expect(done).resolves.toEqual({ status: 'accepted', credential: 'cred-1', mqtt: { tcp: 'mqtt://127.0.0.1:1883' } });
    expect(double.requests).toHaveLength(3);
    expect(new Set(double.requests.map((r) => r.enrollmentKey))).toEqual(new Set([request.enrollmentKey]));
    expect(double.requests[0]).toEqual(request);
  });

  it('stops on 401 FLT_ENROLL_TOKEN_INVALID without retrying', async () => {
    const double = await startEnrollDouble(() => ({ status: 401, body: { code: 'FLT_ENROLL_TOKEN_INVALID', message: 'bad token' } }));
    const timers = new FakeTimers();
    await expect(loop(double.url, timers)).resolves.toEqual({ status: 'refused', code: 'FLT_ENROLL_TOKEN_INVALID', message: 'bad token' });
    expect(double.requests).toHaveLength(1);
    expect(timers.pendingDelays).toEqual([]);
  });

  it.each(['FLT_ENROLL_REJECTED', 'FLT_DEVICE_REVOKED', 'FLT_ENROLL_KEY_MISMATCH'])('stops on 403 %s', async (code) => {
    const double = await startEnrollDouble(() => ({ status: 403, body: { code, message: 'no' } }));
    const outcome = await loop(double.url, new FakeTimers());
    expect(outcome).toMatchObject({ status: 'refused', code });
    expect(double.requests).toHaveLength(1);
  });

  it('backs off exponentially with jitter on server errors, then succeeds', async () => {
    const double = await startEnrollDouble((_req, n) => (n < 3 ? { status: 503, body: { code: 'FLT_NOT_READY', message: 'starting' } } : accepted));
    const timers = new FakeTimers();
    const done = loop(double.url, timers, () => 0);
    const first = await timers.nextTimer();
    expect(first.ms).toBe(500); // random 0 → half of 1000
    timers.advance(first.ms);
    const second = await timers.nextTimer();
    expect(second.ms).toBe(1000); // half of 2000
    timers.advance(second.ms);
    await expect(done).resolves.toMatchObject({ status: 'accepted' });
  });

  it('honours a Retry-After header on 429', async () => {
    const double = await startEnrollDouble((_req, n) =>
      n === 1 ? { status: 429, body: { code: 'FLT_RATE_LIMITED', message: 'slow down' }, headers: { 'retry-after': '7' } } : accepted,
    );
    const timers = new FakeTimers();
    const done = loop(double.url, timers, () => 0);
    const { ms } = await timers.nextTimer();
    expect(ms).toBe(7000);
    timers.advance(ms);
    await expect(done).resolves.toMatchObject({ status: 'accepted' });
  });

  it('treats an answer that does not match the schema as retryable, not as accepted', async () => {
    const double = await startEnrollDouble((_req, n) => (n === 1 ? { status: 200, body: { status: 'accepted', deviceId: 'edge-1' } } : accepted));
    const timers = new FakeTimers();
    const done = loop(double.url, timers, () => 0);
    timers.advance((await timers.nextTimer()).ms);
    await expect(done).resolves.toMatchObject({ status: 'accepted', credential: 'cred-1' });
    expect(double.requests).toHaveLength(2);
  });
});
