import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAX_RETRY_AFTER_SEC, backoffDelay, retryAfterDelay } from '../src/mqtt/backoff.ts';
import { MqttSession } from '../src/mqtt/session.ts';
import { tcpStreamFactory } from '../src/mqtt/tcp-transport.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { silentLogger } from './helpers/logger.ts';

/** A port with nothing listening on it (bound, read, released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const policy = { initialMs: 1000, maxMs: 30_000, multiplier: 2 };

describe('reconnect backoff', () => {
  it('stays within [cap/2, cap] for every attempt, whatever the random draw', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(attempt, policy, () => r);
        expect(d).toBeGreaterThanOrEqual(cap / 2);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('grows exponentially and stops growing at maxMs', () => {
    const lows = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, policy, () => 0));
    expect(lows).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect(backoffDelay(1000, policy, () => 0.999999)).toBeLessThanOrEqual(30_000);
  });

  it('spreads devices out: different draws give different delays', () => {
    const draws = new Set([0.1, 0.4, 0.7, 0.9].map((r) => backoffDelay(3, policy, () => r)));
    expect(draws.size).toBe(4);
  });

  it('never retries before a server Retry-After and at most 20% after it', () => {
    expect(retryAfterDelay(10, () => 0)).toBe(10_000);
    expect(retryAfterDelay(10, () => 0.999999)).toBeLessThanOrEqual(12_000);
    expect(retryAfterDelay(0, () => 0.5)).toBe(0);
  });

  it('takes a Retry-After longer than an hour (or absurd) as an hour', () => {
    expect(retryAfterDelay(MAX_RETRY_AFTER_SEC, () => 0)).toBe(3_600_000);
    expect(retryAfterDelay(10 ** 9, () => 0)).toBe(3_600_000);
    expect(retryAfterDelay(Number.MAX_SAFE_INTEGER, () => 0.999999)).toBeLessThanOrEqual(4_320_000);
  });
});

describe('MQTT session reconnects', () => {
  it('waits the jittered backoff between attempts on the injected timers, growing each time', async () => {
    const timers = new FakeTimers();
    const draws = [0, 0.999999, 0.5];
    const session = new MqttSession({
      deviceId: 'edge-1',
      credential: 'c',
      stream: tcpStreamFactory(`mqtt://127.0.0.1:${await closedPort()}`),
      keepaliveSec: 30,
      connectTimeoutMs: 5000,
      backoff: { initialMs: 1000, maxMs: 30_000, multiplier: 2 },
      timers,
      random: () => draws.shift() ?? 0,
      logger: silentLogger,
    });
    onTestFinished(() => session.close());
    const scheduled: Array<[number, number]> = [];
    const next = (): Promise<void> => new Promise((resolve) => session.once('reconnectScheduled', (a, d) => (scheduled.push([a, d]), resolve())));

    let wait = next();
    session.start();
    for (let i = 0; i < 3; i++) {
      await wait;
      wait = next();
      // Nothing happens before the delay is up; then exactly one new attempt starts.
      timers.advance(scheduled[i]![1] - 1);
      expect(scheduled).toHaveLength(i + 1);
      timers.advance(1);
    }
    await wait;
    expect(scheduled.slice(0, 3)).toEqual([
      [0, 500],
      [1, 2000],
      [2, 3000],
    ]);
  });
});
