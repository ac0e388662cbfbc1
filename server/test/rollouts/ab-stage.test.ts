import { afterEach, describe, expect, it } from 'vitest';
import type { AbArmKpis, AbComparison, ReportedState } from '@flotilla/protocol';
import { judgeAb, type AbGateLimits } from '../../src/rollouts/health-gate.ts';
import { compareArms } from '../../src/ab/ab-comparison.ts';
import { RolloutHarness, OPERATOR } from './harness.ts';

function arm(version: string, requests: number, errors: number, latencyMs: number): AbArmKpis {
  const ok = requests - errors;
  return {
    version,
    requests,
    errors,
    latencyCount: ok,
    latencySumMs: ok * latencyMs,
    // A small spread around the mean (variance ≈ 1 % of the mean squared).
    latencySumSqMs: ok * latencyMs * latencyMs * 1.01,
    p50Ms: latencyMs,
    p95Ms: latencyMs,
    confidenceCount: 0,
    confidenceSum: 0,
    confidenceSumSq: 0,
    escalations: 0,
  };
}

const comparison = (control: AbArmKpis, candidate: AbArmKpis): AbComparison => compareArms('digits', [{ deviceId: 'd', report: { share: 0.5, since: 0, control, candidate } }]);
const LIMITS: AbGateLimits = { minRequests: 200, minDurationSec: 60, maxErrorRateDelta: 0.01, maxLatencyRatio: 1.5 };
const T0 = 1_700_000_000_000;

describe('judgeAb', () => {
  it('waits until both arms have minRequests and the stage has run minDurationSec by the engine clock', () => {
    const bad = comparison(arm('1.0.0', 1000, 0, 2), arm('2.0.0', 150, 50, 2));
    expect(judgeAb(LIMITS, bad, T0, T0 + 3_600_000)).toMatchObject({ kind: 'wait' });
    const even = comparison(arm('1.0.0', 1000, 10, 2), arm('2.0.0', 1000, 10, 2));
    expect(judgeAb(LIMITS, even, T0, T0 + 59_999)).toMatchObject({ kind: 'wait' });
    expect(judgeAb(LIMITS, even, T0, T0 + 60_000)).toEqual({ kind: 'pass' });
  });

  it('fails a candidate whose error rate is significantly worse by more than maxErrorRateDelta', () => {
    const worse = comparison(arm('1.0.0', 2000, 10, 2), arm('2.0.0', 2000, 200, 2));
    const v = judgeAb(LIMITS, worse, T0, T0 + 60_000);
    expect(v.kind).toBe('regressed');
    expect(v.kind === 'regressed' && v.reasons[0]).toMatch(/^errorRate candidate − control/);
  });

  it('lets a worse-looking error rate through while its interval still reaches below the limit', () => {
    // 3 of 200 against 1 of 200: the estimate is +1 point, the lower bound far below it.
    const noisy = comparison(arm('1.0.0', 200, 1, 2), arm('2.0.0', 200, 3, 2));
    expect(judgeAb({ ...LIMITS, maxErrorRateDelta: 0 }, noisy, T0, T0 + 60_000)).toEqual({ kind: 'pass' });
  });

  it('fails a candidate significantly slower than maxLatencyRatio times the control', () => {
    const slow = comparison(arm('1.0.0', 1000, 0, 2), arm('2.0.0', 1000, 0, 4));
    const v = judgeAb(LIMITS, slow, T0, T0 + 60_000);
    expect(v.kind === 'regressed' && v.reasons[0]).toMatch(/^mean latency/);
    const bitSlower = comparison(arm('1.0.0', 1000, 0, 2), arm('2.0.0', 1000, 0, 2.5));
    expect(judgeAb(LIMITS, bitSlower, T0, T0 + 60_000)).toEqual({ kind: 'pass' });
  });
});

let h: RolloutHarness;
afterEach(() => h?.close());

const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0', onAbort: 'revert' as const };
const AB = { share: 0.2, sticky: 'x-user', minRequests: 100, minDurationSec: 30, maxErrorRateDelta: 0.02 };

/** The device reports its A/B split of digits: control on 1.0.0, candidate on 2.0.0 staged. */
function reportAb(deviceId: string, control: AbArmKpis, candidate: AbArmKpis): void {
  const reported: ReportedState = {
    appliedGeneration: h.devices.desiredGeneration(deviceId),
    models: { digits: { version: '1.0.0', state: 'installed', ab: { share: 0.2, sticky: 'x-user', since: 0, control, candidate } } },
  };
  h.devices.setReported(deviceId, reported, h.t);
  h.engine.onDeviceReported(deviceId, reported);
}

describe('A/B stages', () => {
  it('splits the stage’s devices, then, once the gate passes, sends them the entry without the split', () => {
    h = new RolloutHarness();
    for (const id of h.addDevices(4)) h.setDesiredVersion(id, 'digits', '1.0.0');
    h.engine.create(OPERATOR, { ...base, id: 'ab-pass', stages: [{ count: 2, ab: AB }, { percent: 100 }] });
    h.engine.tick();
    const canaries = h.inState('ab-pass', 'notified');
    expect(canaries).toHaveLength(2);
    for (const id of canaries) expect(h.desired(id)!.models.digits).toEqual({ version: '2.0.0', rollout: 'ab-pass', ab: { share: 0.2, sticky: 'x-user' } });
    for (const id of canaries) reportAb(id, arm('1.0.0', 400, 2, 2), arm('2.0.0', 100, 0, 2));
    h.engine.tick();
    // Enough requests, but the stage has not run minDurationSec yet.
    expect(h.desired(canaries[0]!)!.models.digits).toHaveProperty('ab');
    h.advance(30_000);
    h.engine.tick();
    for (const id of canaries) expect(h.desired(id)!.models.digits).toEqual({ version: '2.0.0', rollout: 'ab-pass' });
    expect(h.engine.events('ab-pass', { limit: 100 }).map((e) => e.kind)).toContain('ab.passed');
    for (const id of canaries) h.report(id, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    expect(h.engine.get('ab-pass').stage).toBe(1);
    for (const id of h.inState('ab-pass', 'notified')) expect(h.desired(id)!.models.digits).not.toHaveProperty('ab');
  });

  it('aborts the rollout with FLT_ROLLOUT_AB_REGRESSION when the candidate errs significantly more, and reverts its devices', () => {
    h = new RolloutHarness();
    for (const id of h.addDevices(4)) h.setDesiredVersion(id, 'digits', '1.0.0');
    h.engine.create(OPERATOR, { ...base, id: 'ab-fail', stages: [{ count: 2, ab: AB }, { percent: 100 }] });
    h.engine.tick();
    const canaries = h.inState('ab-fail', 'notified');
    for (const id of canaries) reportAb(id, arm('1.0.0', 800, 4, 2), arm('2.0.0', 200, 30, 2));
    h.advance(30_000);
    h.engine.tick();
    const r = h.engine.get('ab-fail');
    expect(r.state).toBe('reverted');
    expect(r.reason).toMatch(/FLT_ROLLOUT_AB_REGRESSION/);
    for (const id of canaries) expect(h.desired(id)!.models.digits).toMatchObject({ version: '1.0.0' });
  });

  it('refuses a stage that asks for both a shadow gate and an A/B split', () => {
    h = new RolloutHarness();
    h.addDevices(2);
    expect(() => h.engine.create(OPERATOR, { ...base, id: 'both', stages: [{ count: 1, ab: AB, shadow: { share: 0.5, minSamples: 10, minAgreement: 0.9 } }, { percent: 100 }] })).toThrow(
      expect.objectContaining({ code: 'FLT_ROLLOUT_SPEC_INVALID' }),
    );
  });
});
