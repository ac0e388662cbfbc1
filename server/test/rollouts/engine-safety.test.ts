import { afterEach, describe, expect, it } from 'vitest';
import { RolloutHarness, OPERATOR } from './harness.ts';

let h: RolloutHarness;
afterEach(() => h?.close());

const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0' };

describe('abort rules', () => {
  it('aborts on the chosen failure type only once the threshold and the minimum sample are reached, then pauses', () => {
    h = new RolloutHarness();
    const ids = h.addDevices(10);
    h.engine.create(OPERATOR, { ...base, id: 'abort-type', stages: [{ percent: 100, successThreshold: 10 }], abortRules: [{ failureType: 'failed', thresholdPercent: 50, minExecuted: 8 }] });
    h.engine.tick();
    // Rejections and successes are outcomes, but not failures of this type.
    h.report(ids[0]!, 'digits', '1.0.0', 'healthy');
    h.report(ids[1]!, 'digits', '1.0.0', 'healthy');
    h.report(ids[2]!, 'digits', '2.0.0', 'healthy');
    h.report(ids[3]!, 'digits', '2.0.0', 'healthy');
    for (const id of ids.slice(4, 7)) h.report(id, 'digits', '2.0.0', 'failed', { error: 'FLT_INFER_LOAD_FAILED' });
    h.engine.tick();
    expect(h.engine.get('abort-type').state).toBe('running'); // 7 executed: below the minimum sample
    h.report(ids[7]!, 'digits', '2.0.0', 'healthy');
    h.report(ids[8]!, 'digits', '2.0.0', 'failed');
    h.engine.tick();
    expect(h.engine.get('abort-type').state).toBe('running'); // 4 failed of 9 executed: 44%
    h.report(ids[9]!, 'digits', '2.0.0', 'failed');
    h.engine.tick();
    const r = h.engine.get('abort-type');
    expect(r.state).toBe('paused'); // 5 of 10: 50%
    expect(r.reason).toMatch(/^aborted: failed 5 of 10/);
    // Paused, not reverted: the devices keep the new version as desired.
    expect(h.desired(ids[2]!)!.models.digits!.version).toBe('2.0.0');
  });

  it('counts timeouts and rejections under failure type any', () => {
    h = new RolloutHarness();
    const ids = h.addDevices(4);
    h.engine.create(OPERATOR, { ...base, id: 'any', stages: [{ percent: 100, successThreshold: 0 }], perDeviceTimeoutSec: 60, abortRules: [{ failureType: 'any', thresholdPercent: 50, minExecuted: 4 }] });
    h.engine.tick();
    h.report(ids[0]!, 'digits', '2.0.0', 'healthy');
    h.report(ids[1]!, 'digits', '1.0.0', 'activated');
    h.report(ids[2]!, 'digits', '2.0.0', 'healthy');
    h.advance(60_000);
    h.engine.tick();
    expect(h.inState('any', 'timedOut')).toEqual([ids[3]]);
    expect(h.engine.get('any').state).toBe('paused');
  });

  it('does not abort again on the same outcomes after an operator resumes', () => {
    h = new RolloutHarness();
    const ids = h.addDevices(6);
    h.engine.create(OPERATOR, { ...base, id: 'res', stages: [{ percent: 100, successThreshold: 0 }], abortRules: [{ failureType: 'failed', thresholdPercent: 50, minExecuted: 2 }], rate: { baseRatePerMin: 120 } });
    h.engine.tick();
    h.advance(1000);
    h.engine.tick();
    const first = h.inState('res', 'notified');
    for (const id of first) h.report(id, 'digits', '2.0.0', 'failed');
    h.engine.tick();
    expect(h.engine.get('res').state).toBe('paused');
    h.engine.resume(OPERATOR, 'res');
    h.advance(1000);
    h.engine.tick();
    expect(h.engine.get('res').state).toBe('running');
    expect(h.inState('res', 'notified').length).toBeGreaterThan(0);
    expect(ids).toHaveLength(6);
  });
});

describe('revert', () => {
  it('on abort, gives every moved device its previous desired version back and leaves the others alone', () => {
    h = new RolloutHarness();
    const ids = h.addDevices(6);
    for (const id of ids.slice(0, 5)) h.setDesiredVersion(id, 'digits', '1.0.0');
    // ids[5] had no desired version of the model at all.
    h.engine.create(OPERATOR, {
      ...base,
      id: 'rev',
      stages: [{ count: 3 }, { percent: 100 }],
      onAbort: 'revert',
      abortRules: [{ failureType: 'failed', thresholdPercent: 30, minExecuted: 1 }],
    });
    h.engine.tick();
    const moved = h.inState('rev', 'notified');
    const untouched = ids.filter((id) => !moved.includes(id));
    h.report(moved[0]!, 'digits', '2.0.0', 'healthy');
    h.report(moved[1]!, 'digits', '2.0.0', 'failed', { error: 'FLT_INFER_SELFTEST_FAILED' });
    h.engine.tick();
    expect(h.engine.get('rev')).toMatchObject({ state: 'reverted', reason: expect.stringMatching(/^aborted: failed 1 of 2/) });
    for (const id of moved) {
      const before = id === ids[5] ? undefined : '1.0.0';
      expect(h.desired(id)!.models.digits?.version).toBe(before);
    }
    for (const id of untouched) expect(h.desired(id)?.models.digits?.version).toBe(id === ids[5] ? undefined : '1.0.0');
    expect(h.inState('rev', 'reverted').sort()).toEqual([...moved].sort());
    // The reverted desired states went out after the commit.
    const lastSent = new Map(h.published.map((p) => [p.deviceId, p.desired]));
    for (const id of moved) expect(lastSent.get(id)!.generation).toBe(h.devices.desiredGeneration(id));
  });

  it('reverts a completed rollout on command, except devices another change moved since', () => {
    h = new RolloutHarness();
    const [a, b] = h.addDevices(2);
    h.setDesiredVersion(a!, 'digits', '1.0.0');
    h.setDesiredVersion(b!, 'digits', '1.0.0');
    h.engine.create(OPERATOR, { ...base, id: 'done', stages: [{ percent: 100 }] });
    h.engine.tick();
    h.report(a!, 'digits', '2.0.0', 'healthy');
    h.report(b!, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    expect(h.engine.get('done').state).toBe('completed');
    h.setDesiredVersion(b!, 'digits', '3.0.0');
    h.engine.revert(OPERATOR, 'done');
    expect(h.desired(a!)!.models.digits!.version).toBe('1.0.0');
    expect(h.desired(b!)!.models.digits!.version).toBe('3.0.0');
    expect(() => h.engine.revert(OPERATOR, 'done')).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_STATE_CONFLICT' }));
  });
});

describe('per-device timeout and retries', () => {
  it('retries a silent device with a new generation, then counts it as timed out', () => {
    h = new RolloutHarness();
    const [d] = h.addDevices(1);
    h.engine.create(OPERATOR, { ...base, id: 'timeout-retry', stages: [{ percent: 100, successThreshold: 0 }], perDeviceTimeoutSec: 120, retries: 1 });
    h.engine.tick();
    const firstGen = h.devices.desiredGeneration(d!);
    h.advance(119_000);
    h.engine.tick();
    expect(h.inState('timeout-retry', 'notified')).toEqual([d]);
    h.advance(1_000);
    h.engine.tick();
    expect(h.devices.desiredGeneration(d!)).toBe(firstGen + 1);
    expect(h.inState('timeout-retry', 'notified')).toEqual([d]);
    h.advance(120_000);
    h.engine.tick();
    expect(h.inState('timeout-retry', 'timedOut')).toEqual([d]);
    expect(h.engine.devicesOf('timeout-retry', { limit: 1 })[0]).toMatchObject({ attempts: 1, error: 'FLT_ROLLOUT_DEVICE_TIMEOUT' });
  });
});

describe('conflicts', () => {
  it('refuses a second active rollout of the same model on the same devices', () => {
    h = new RolloutHarness();
    h.addDevices(3);
    h.engine.create(OPERATOR, { ...base, id: 'first', stages: [{ percent: 100 }], priority: 5 });
    expect(() => h.engine.create(OPERATOR, { ...base, id: 'second', version: '3.0.0', stages: [{ percent: 100 }], priority: 9 })).toThrow(
      expect.objectContaining({ code: 'FLT_ROLLOUT_CONFLICT' }),
    );
    // Another model on the same devices is no conflict.
    expect(h.engine.create(OPERATOR, { ...base, id: 'other-model', model: 'faces', stages: [{ percent: 100 }] }).state).toBe('running');
  });

  it('pre-empts a lower-priority rollout when asked to', () => {
    h = new RolloutHarness();
    h.addDevices(3);
    h.engine.create(OPERATOR, { ...base, id: 'low', stages: [{ percent: 100 }], priority: 5 });
    h.engine.tick();
    expect(() => h.engine.create(OPERATOR, { ...base, id: 'same', version: '3.0.0', stages: [{ percent: 100 }], priority: 5, preempt: true })).toThrow(
      expect.objectContaining({ code: 'FLT_ROLLOUT_CONFLICT' }),
    );
    const dry = h.engine.dryRun({ ...base, version: '3.0.0', stages: [{ percent: 100 }], priority: 9, preempt: true });
    expect(dry.conflicts).toEqual([{ rolloutId: 'low', priority: 5, overlap: 3, action: 'preempt' }]);
    h.engine.create(OPERATOR, { ...base, id: 'high', version: '3.0.0', stages: [{ percent: 100 }], priority: 9, preempt: true });
    expect(h.engine.get('low')).toMatchObject({ state: 'preempted', reason: 'preempted by high' });
    h.engine.tick();
    expect(h.inState('high', 'notified')).toHaveLength(3);
  });
});

describe('continuous mode', () => {
  it('brings a device that matches the target later into the last stage', () => {
    h = new RolloutHarness();
    h.addDevices(2);
    h.engine.create(OPERATOR, { ...base, id: 'cont', stages: [{ count: 1 }, { percent: 100 }], continuous: true });
    h.engine.tick();
    for (const id of h.inState('cont', 'notified')) h.report(id, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    for (const id of h.inState('cont', 'notified')) h.report(id, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    expect(h.engine.get('cont')).toMatchObject({ state: 'running', stage: 1, counts: { succeeded: 2 } });

    const [late] = h.addDevices(1, { group: 'fleet' }, 'late');
    h.addDevices(1, { group: 'elsewhere' }, 'other');
    h.engine.onDeviceChanged(late!);
    h.engine.tick();
    expect(h.inState('cont', 'notified')).toEqual([late]);
    expect(h.desired(late!)!.models.digits).toMatchObject({ version: '2.0.0', rollout: 'cont' });
    expect(h.engine.devicesOf('cont', { state: 'notified', limit: 5 })[0]!.stage).toBe(1);
  });

  it('refuses an empty target unless the rollout is continuous', () => {
    h = new RolloutHarness();
    expect(() => h.engine.create(OPERATOR, { ...base, stages: [{ percent: 100 }] })).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_NO_TARGETS' }));
    expect(h.engine.create(OPERATOR, { ...base, stages: [{ percent: 100 }], continuous: true }).targetCount).toBe(0);
  });
});

describe('crash safety', () => {
  it('continues a rollout from the database after the engine is lost mid-rollout', () => {
    h = new RolloutHarness();
    h.addDevices(20);
    h.engine.create(OPERATOR, { ...base, id: 'crash', stages: [{ count: 2 }, { percent: 50 }, { percent: 100 }] });
    h.engine.tick();
    const canaries = h.inState('crash', 'notified');
    const gens = canaries.map((id) => h.devices.desiredGeneration(id));
    h.report(canaries[0]!, 'digits', '2.0.0', 'healthy');
    // The second canary's report is stored, but the engine dies before its hook runs.
    h.report(canaries[1]!, 'digits', '2.0.0', 'healthy', { silent: true });

    const engine = h.newEngine(); // the old object is dropped without close()
    engine.tick();
    expect(engine.get('crash').stage).toBe(1);
    // Canaries were not sent anything again; the next stage was.
    expect(canaries.map((id) => h.devices.desiredGeneration(id))).toEqual(gens);
    expect(h.inState('crash', 'notified')).toHaveLength(8);
    expect(h.inState('crash', 'succeeded')).toEqual(canaries);
  });

  it('commits nothing of a transition that fails half-way', () => {
    h = new RolloutHarness();
    h.addDevices(3);
    h.engine.create(OPERATOR, { ...base, id: 'atomic', stages: [{ percent: 100 }] });
    // Make the third desired-state write fail inside the notify transaction.
    h.db.exec(`CREATE TRIGGER boom BEFORE UPDATE OF desired ON devices WHEN NEW.id = 'dev-0002' BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    h.engine.tick();
    expect(h.inState('atomic', 'notified')).toEqual([]);
    expect(h.published).toEqual([]);
    h.db.exec('DROP TRIGGER boom');
    h.engine.tick();
    expect(h.inState('atomic', 'notified')).toHaveLength(3);
  });
});
