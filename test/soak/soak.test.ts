import { describe, expect, it } from 'vitest';
import { runSoak, type SoakResult } from './harness.ts';

// The CI subset of `pnpm test:soak`: a short run with a small fleet. It checks that the harness
// runs end to end, the healthy fleet is served, and every misbehaver is refused; the full run's
// criteria (memory growth, p99) are reported by test/soak/run.ts, never asserted here.
describe('soak (CI subset)', () => {
  let result: SoakResult;

  it('serves a healthy fleet while misbehaving clients run, and refuses each misbehaver', { timeout: 240_000 }, async () => {
    result = await runSoak({ durationMs: 30_000, devices: 100, eventIntervalMs: 2_000, desiredIntervalMs: 200, sampleEveryMs: 3_000, warmupShare: 0.1 });
    const { healthy, misbehavers, server } = result;

    expect(healthy.connected).toBe(100);
    expect(healthy.unexpectedDisconnects).toBe(0);
    expect(healthy.eventsSent).toBeGreaterThan(0);
    expect(healthy.eventsAcked).toBe(healthy.eventsSent);
    expect(healthy.desiredReceived).toBeGreaterThan(0);

    // Guessers never get in: REST answers 401 then 429, MQTT never answers CONNACK 0.
    expect(misbehavers['rest brute force']!.unauthorized).toBeGreaterThanOrEqual(20);
    expect(misbehavers['rest brute force']!.throttled).toBeGreaterThan(0);
    expect(misbehavers['rest brute force']!.status200).toBeUndefined();
    expect(misbehavers['mqtt brute force']!['answer-0']).toBeUndefined();
    expect(server['flotilla_broker_connects_total{result="refused"}']).toBeGreaterThan(0);
    // Flooders are shed, oversize publishers disconnected, garbage rejected.
    expect(server['flotilla_broker_connections_shed_total{reason="flood"}']).toBeGreaterThan(0);
    expect(misbehavers['oversize publisher']!.closed).toBeGreaterThan(0);
    expect(server['flotilla_broker_policy_violations_total{code="FLT_MSG_TOO_LARGE"}']).toBeGreaterThan(0);
    const rejected = Object.entries(server).filter(([k]) => k.startsWith('flotilla_device_messages_rejected_total'));
    expect(rejected.reduce((a, [, v]) => a + v, 0)).toBeGreaterThan(0);
    // Memory was sampled through the run.
    expect(result.samples.length).toBeGreaterThanOrEqual(5);
  });
});
