import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaError, type ModelHealth, type ReportedState } from '@flotilla/protocol';
import { judgeAgainstBaseline, type HealthGateLimits } from '../../src/rollouts/health-gate.ts';
import type { ReleaseCatalog } from '../../src/rollouts/index.ts';
import { RolloutHarness, OPERATOR } from './harness.ts';

let h: RolloutHarness;
afterEach(() => h?.close());

const limits: HealthGateLimits = { maxErrorRateDelta: 0.02, maxLatencyRatio: 1.5, maxErrorRate: null, maxP95Ms: null, minRequests: 20, baselineWindowSec: 900 };
const health = (requests: number, errors: number, p50Ms: number | null, p95Ms: number | null): ModelHealth => ({ since: 0, requests, errors, p50Ms, p95Ms });
const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0' };
const gate = { maxErrorRateDelta: 0.02, maxLatencyRatio: 1.5, minRequests: 20 };

function errorOf(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlotillaError) return err;
    throw err;
  }
  throw new Error('expected a FlotillaError');
}

/** The device reports, for its current desired generation, `version` healthy with these counters. */
function reportHealthy(deviceId: string, version: string, counters: ModelHealth): void {
  const reported: ReportedState = { appliedGeneration: h.devices.desiredGeneration(deviceId), models: { digits: { version, state: 'healthy', health: counters } } };
  h.devices.setReported(deviceId, reported, h.t);
  h.engine.onDeviceReported(deviceId, reported);
}

/** A fleet on 1.0.0 whose devices all report `old` counters. */
function fleetOnOldVersion(n: number, old: ModelHealth): string[] {
  const ids = h.addDevices(n);
  for (const id of ids) {
    h.setDesiredVersion(id, 'digits', '1.0.0');
    reportHealthy(id, '1.0.0', old);
  }
  return ids;
}

function events(rolloutId: string, kind: string): Array<{ device_id: string; details: string }> {
  return h.db.prepare('SELECT device_id, details FROM rollout_events WHERE rollout_id = ? AND kind = ? ORDER BY id').all(rolloutId, kind) as Array<{ device_id: string; details: string }>;
}

describe('health judged against the old version', () => {
  const baseline = { devices: 8, requests: 800, errorRate: 0.01, p50Ms: 10, p95Ms: 20 };

  it('passes a device within the error-rate delta and the latency ratio of the old version', () => {
    expect(judgeAgainstBaseline(limits, health(100, 3, 14, 29), baseline)).toBeUndefined();
  });

  it('fails a device whose error rate exceeds the old one by more than the delta, naming both rates', () => {
    const r = judgeAgainstBaseline(limits, health(100, 4, 10, 20), baseline)!;
    expect(r.reasons).toEqual(['errorRate 0.04 > baseline 0.01 + 0.02']);
    expect(r).toMatchObject({ observed: { requests: 100, errorRate: 0.04 }, baseline: { errorRate: 0.01 } });
  });

  it('fails a device whose p50 or p95 latency is more than the ratio times the old one', () => {
    expect(judgeAgainstBaseline(limits, health(100, 0, 16, 20), baseline)!.reasons).toEqual(['p50Ms 16 > 1.5 × baseline 10']);
    expect(judgeAgainstBaseline(limits, health(100, 0, 10, 31), baseline)!.reasons).toEqual(['p95Ms 31 > 1.5 × baseline 20']);
  });

  it('does not judge a device that served fewer than minRequests', () => {
    expect(judgeAgainstBaseline(limits, health(19, 19, 500, 900), baseline)).toBeUndefined();
  });

  it('applies only the absolute limits without a baseline, or with one of fewer than minRequests requests', () => {
    const abs = { ...limits, maxErrorRate: 0.05, maxP95Ms: 100 };
    expect(judgeAgainstBaseline(limits, health(100, 50, 500, 900), null)).toBeUndefined();
    expect(judgeAgainstBaseline(abs, health(100, 6, 10, 20), null)!.reasons).toEqual(['errorRate 0.06 > 0.05']);
    expect(judgeAgainstBaseline(abs, health(100, 0, 10, 101), { ...baseline, requests: 5 })).toMatchObject({ reasons: ['p95Ms 101 > 100'], baseline: null });
  });
});

describe('rollout health gate', () => {
  it('fails a canary that errs more than the devices still on the old version, and the failure counts toward abort rules', () => {
    h = new RolloutHarness();
    fleetOnOldVersion(10, health(200, 2, 10, 20));
    h.engine.create(OPERATOR, {
      ...base,
      id: 'gated',
      stages: [{ count: 2, bakeTimeSec: 600 }, { percent: 100 }],
      healthGate: gate,
      abortRules: [{ failureType: 'failed', thresholdPercent: 50, minExecuted: 1 }],
    });
    h.engine.tick();
    const [good, bad] = h.inState('gated', 'notified');
    reportHealthy(good!, '2.0.0', health(50, 1, 11, 22));
    reportHealthy(bad!, '2.0.0', health(50, 10, 11, 22));
    h.engine.tick();

    expect(h.inState('gated', 'failed')).toEqual([bad]);
    expect(h.engine.devicesOf('gated', { state: 'failed', limit: 10 })[0]!.error).toBe('FLT_ROLLOUT_HEALTH_REGRESSION');
    const [ev] = events('gated', 'device.healthRegression');
    expect(ev!.device_id).toBe(bad);
    expect(JSON.parse(ev!.details)).toMatchObject({ observed: { errorRate: 0.2 }, baseline: { devices: 8, requests: 1600, errorRate: 0.01 } });
    expect(h.engine.get('gated')).toMatchObject({ state: 'paused', reason: expect.stringMatching(/^aborted: failed 1 of 1/) });
  });

  it('fails a device during its bake when fresh counters show a latency regression', () => {
    h = new RolloutHarness();
    fleetOnOldVersion(4, health(200, 0, 10, 20));
    h.engine.create(OPERATOR, { ...base, id: 'bake', stages: [{ count: 1, bakeTimeSec: 600 }, { percent: 100 }], healthGate: gate });
    h.engine.tick();
    const [canary] = h.inState('bake', 'notified');
    // Healthy with too little traffic to judge: the bake starts.
    reportHealthy(canary!, '2.0.0', health(5, 0, 50, 90));
    h.engine.tick();
    expect(h.engine.get('bake').funnel![0]!.baking).toBe(1);

    h.advance(300_000);
    reportHealthy(canary!, '2.0.0', health(120, 0, 12, 45));
    h.engine.tick();
    expect(h.inState('bake', 'failed')).toEqual([canary]);
    expect(JSON.parse(events('bake', 'device.healthRegression')[0]!.details).reasons).toEqual(['p95Ms 45 > 1.5 × baseline 20']);
  });

  it('lets a device within the limits succeed after its bake and the rollout complete', () => {
    h = new RolloutHarness();
    fleetOnOldVersion(3, health(200, 2, 10, 20));
    h.engine.create(OPERATOR, { ...base, id: 'fine', stages: [{ count: 1, bakeTimeSec: 60 }, { percent: 100 }], healthGate: gate });
    h.engine.tick();
    reportHealthy(h.inState('fine', 'notified')[0]!, '2.0.0', health(100, 2, 10, 21));
    h.advance(60_000);
    h.engine.tick();
    h.engine.tick();
    for (const id of h.inState('fine', 'notified')) reportHealthy(id, '2.0.0', health(100, 1, 9, 19));
    h.advance(1_000);
    h.engine.tick();
    expect(h.engine.get('fine')).toMatchObject({ state: 'completed', counts: { succeeded: 3, failed: 0 } });
  });

  it('falls back to the absolute limits once no device is left on the old version', () => {
    h = new RolloutHarness();
    fleetOnOldVersion(2, health(200, 0, 10, 20));
    h.engine.create(OPERATOR, { ...base, id: 'all', stages: [{ percent: 100 }], healthGate: { ...gate, maxErrorRate: 0.05 } });
    h.engine.tick();
    const [a, b] = h.inState('all', 'notified');
    // Both moved: the baseline is gone, so a 4% error rate (beyond old + 2 points) passes the absolute 5%…
    reportHealthy(a!, '2.0.0', health(100, 4, 10, 20));
    // …and 8% does not.
    reportHealthy(b!, '2.0.0', health(100, 8, 10, 20));
    h.engine.tick();
    expect(h.inState('all', 'succeeded')).toEqual([a]);
    expect(h.inState('all', 'failed')).toEqual([b]);
    expect(JSON.parse(events('all', 'device.healthRegression')[0]!.details)).toMatchObject({ reasons: ['errorRate 0.08 > 0.05'], baseline: null });
  });

  it('ignores old-version reports older than the baseline window', () => {
    h = new RolloutHarness();
    fleetOnOldVersion(5, health(200, 0, 10, 20));
    h.advance(1_000_000);
    h.engine.create(OPERATOR, { ...base, id: 'stale', stages: [{ count: 1 }, { percent: 100 }], healthGate: { ...gate, baselineWindowSec: 600 } });
    h.engine.tick();
    // 30% errors, but no baseline reported within 10 minutes and no absolute limit: nothing to compare with.
    reportHealthy(h.inState('stale', 'notified')[0]!, '2.0.0', health(100, 30, 10, 20));
    h.engine.tick();
    expect(h.inState('stale', 'failed')).toEqual([]);
    expect(h.inState('stale', 'succeeded')).toHaveLength(1);
  });

  it('refuses a health gate without limits or with limits out of range', () => {
    h = new RolloutHarness();
    h.addDevices(2);
    const stages = [{ percent: 100 }];
    expect(errorOf(() => h.engine.create(OPERATOR, { ...base, stages, healthGate: { minRequests: 10 } }))).toMatchObject({ code: 'FLT_ROLLOUT_SPEC_INVALID', details: { field: '/healthGate' } });
    for (const bad of [{ maxLatencyRatio: 0.5 }, { maxErrorRateDelta: 1.5 }, { maxErrorRate: -0.1 }, { maxP95Ms: 0 }, { maxErrorRate: 0.1, minRequests: 0 }]) {
      expect(errorOf(() => h.engine.create(OPERATOR, { ...base, stages, healthGate: bad })).code).toBe('FLT_ROLLOUT_SPEC_INVALID');
    }
    expect(errorOf(() => h.engine.dryRun({ ...base, stages, healthGate: {} })).code).toBe('FLT_ROLLOUT_SPEC_INVALID');
  });
});

describe('releases a rollout may name', () => {
  const catalog: ReleaseCatalog = {
    status: (model, version) => (model !== 'digits' ? 'unknown-model' : version === '2.0.0' ? 'published' : version === '2.1.0' ? 'unpublished' : 'unknown-version'),
  };

  it('refuses an unknown model or version at create and in the dry run, and leaves nothing behind', () => {
    h = new RolloutHarness({ releases: catalog });
    h.addDevices(3);
    const stages = [{ percent: 100 }];
    for (const run of [(s: object) => h.engine.create(OPERATOR, s), (s: object) => h.engine.dryRun(s)]) {
      expect(errorOf(() => run({ ...base, model: 'letters', stages }))).toMatchObject({ code: 'FLT_ROLLOUT_UNKNOWN_MODEL', details: { model: 'letters' } });
      expect(errorOf(() => run({ ...base, version: '9.9.9', stages }))).toMatchObject({ code: 'FLT_ROLLOUT_UNKNOWN_VERSION', details: { version: '9.9.9' } });
      expect(errorOf(() => run({ ...base, version: '2.1.0', stages })).code).toBe('FLT_ROLLOUT_UNKNOWN_VERSION');
    }
    expect(h.engine.list({ limit: 10 })).toEqual([]);
    expect(h.engine.dryRun({ ...base, stages }).targetCount).toBe(3);
  });
});
