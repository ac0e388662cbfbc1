import { afterEach, describe, expect, it } from 'vitest';
import { RolloutHarness, OPERATOR } from './harness.ts';

let h: RolloutHarness;
afterEach(() => h?.close());

const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0' };

describe('rollout cohorts', () => {
  it('picks the same canaries after a restart and different ones for another rollout id', () => {
    h = new RolloutHarness();
    h.addDevices(50);
    const spec = { ...base, id: 'canary-a', stages: [{ count: 3 }, { percent: 100 }] };
    h.engine.create(OPERATOR, spec);
    h.engine.tick();
    const canaries = h.inState('canary-a', 'notified');
    expect(canaries).toHaveLength(3);

    const preview = h.newEngine().dryRun({ ...spec, id: 'canary-a', target: { group: 'fleet' } });
    expect(preview.stages[0]!.devices.map((d) => d.deviceId).sort()).toEqual(canaries);
    const other = h.engine.dryRun({ ...spec, id: 'canary-b' });
    expect(other.stages[0]!.devices.map((d) => d.deviceId).sort()).not.toEqual(canaries);
  });

  it('sizes cumulative percent stages with a canary of at least one device', () => {
    h = new RolloutHarness();
    h.addDevices(150);
    const dry = h.engine.dryRun({ ...base, stages: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }] });
    expect(dry.targetCount).toBe(150);
    expect(dry.stages.map((s) => [s.size, s.cumulative])).toEqual([[2, 2], [13, 15], [60, 75], [75, 150]]);
  });
});

describe('stage advancement', () => {
  it('advances only after the stage devices report healthy on the new version and bake', () => {
    h = new RolloutHarness();
    h.addDevices(10);
    h.engine.create(OPERATOR, { ...base, id: 'bake', stages: [{ count: 2, bakeTimeSec: 600 }, { percent: 100 }] });
    h.engine.tick();
    const canaries = h.inState('bake', 'notified');
    expect(canaries).toHaveLength(2);
    for (const id of canaries) expect(h.desired(id)!.models.digits).toMatchObject({ version: '2.0.0', rollout: 'bake' });

    // Written and installed is not success.
    for (const id of canaries) h.report(id, 'digits', '2.0.0', 'installed');
    h.advance(1_800_000);
    h.engine.tick();
    expect(h.engine.get('bake')).toMatchObject({ state: 'running', stage: 0 });

    for (const id of canaries) h.report(id, 'digits', '2.0.0', 'healthy');
    h.advance(599_000);
    h.engine.tick();
    expect(h.engine.get('bake').stage).toBe(0);
    expect(h.engine.get('bake').funnel![0]!.baking).toBe(2);

    h.advance(1_000);
    h.engine.tick();
    const r = h.engine.get('bake');
    expect(r.stage).toBe(1);
    expect(r.funnel![0]).toMatchObject({ size: 2, required: 2, counts: { succeeded: 2 }, reached: { notified: 2, healthy: 2, succeeded: 2 } });
    expect(h.inState('bake', 'notified')).toHaveLength(8);
  });

  it('shows where each notified device is in its install, and the failures by reason code', () => {
    h = new RolloutHarness();
    h.addDevices(5);
    h.engine.create(OPERATOR, { ...base, id: 'steps', stages: [{ percent: 100, bakeTimeSec: 600 }] });
    h.engine.tick();
    const [a, b, c, d, e] = h.inState('steps', 'notified');
    // Downloading: still serving the old version, the new one as target (what agents report).
    const downloading = { appliedGeneration: h.devices.desiredGeneration(a!), models: { digits: { version: '1.0.0', state: 'downloading', target: '2.0.0' } } };
    h.devices.setReported(a!, downloading as Parameters<typeof h.devices.setReported>[1], 0);
    h.report(b!, 'digits', '2.0.0', 'verified');
    h.report(c!, 'digits', '2.0.0', 'activated');
    h.report(d!, 'digits', '1.0.0', 'failed', { error: 'FLT_OTA_SELFTEST_FAILED' });
    h.engine.tick();
    const f = h.engine.get('steps').funnel![0]!;
    expect(f.inFlight).toEqual({ downloading: 1, verified: 1, activated: 1, waiting: 1 });
    expect(f.failedBy).toEqual({ FLT_OTA_SELFTEST_FAILED: 1 });
    expect(e).toBeDefined();
  });

  it('restarts the bake when a device stops being healthy before it ends', () => {
    h = new RolloutHarness();
    const [d] = h.addDevices(1);
    h.engine.create(OPERATOR, { ...base, id: 'flap', stages: [{ percent: 100, bakeTimeSec: 100 }] });
    h.engine.tick();
    h.report(d!, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    h.advance(50_000);
    h.report(d!, 'digits', '2.0.0', 'activated');
    h.engine.tick();
    h.advance(60_000);
    h.engine.tick();
    expect(h.inState('flap', 'notified')).toEqual([d]);
    h.report(d!, 'digits', '2.0.0', 'healthy');
    h.advance(100_000);
    h.engine.tick();
    expect(h.engine.get('flap').state).toBe('completed');
  });

  it('waits at a manual gate until an operator approves, and refuses approval elsewhere', () => {
    h = new RolloutHarness();
    h.addDevices(4);
    h.engine.create(OPERATOR, { ...base, id: 'gate', stages: [{ count: 1 }, { percent: 100, requireApproval: true }] });
    expect(() => h.engine.approve(OPERATOR, 'gate')).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_STATE_CONFLICT' }));
    h.engine.tick();
    for (const id of h.inState('gate', 'notified')) h.report(id, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    expect(h.engine.get('gate')).toMatchObject({ state: 'awaitingApproval', stage: 0 });
    expect(h.inState('gate', 'pending')).toHaveLength(3);
    h.engine.approve(OPERATOR, 'gate');
    h.engine.tick();
    expect(h.engine.get('gate')).toMatchObject({ state: 'running', stage: 1 });
    expect(h.inState('gate', 'notified')).toHaveLength(3);
    const audit = h.db.prepare("SELECT action FROM audit_log WHERE target = 'gate' ORDER BY id").pluck().all();
    expect(audit).toEqual(['rollout.create', 'rollout.approve']);
  });

  it('counts a device that goes back to its old version as rejected, and a failure report as failed with its code', () => {
    h = new RolloutHarness();
    const [a, b] = h.addDevices(2);
    h.setDesiredVersion(a!, 'digits', '1.0.0');
    h.setDesiredVersion(b!, 'digits', '1.0.0');
    h.engine.create(OPERATOR, { ...base, id: 'rej', stages: [{ percent: 100, successThreshold: 0 }] });
    h.engine.tick();
    h.report(a!, 'digits', '1.0.0', 'downloading');
    h.report(b!, 'digits', '1.0.0', 'failed', { error: 'FLT_INFER_SELFTEST_FAILED' });
    h.engine.tick();
    expect(h.inState('rej', 'failed')).toEqual([b]);
    h.report(a!, 'digits', '1.0.0', 'healthy');
    h.engine.tick();
    expect(h.inState('rej', 'rejected')).toEqual([a]);
    const devices = h.engine.devicesOf('rej', { limit: 10 });
    expect(devices.find((d) => d.device_id === b)!.error).toBe('FLT_INFER_SELFTEST_FAILED');
    expect(h.engine.get('rej').state).toBe('completed');
  });

  it('ignores reports about an older desired generation', () => {
    h = new RolloutHarness();
    const [d] = h.addDevices(1);
    h.engine.create(OPERATOR, { ...base, id: 'stale', stages: [{ percent: 100 }] });
    h.engine.tick();
    const gen = h.devices.desiredGeneration(d!);
    const stale = { appliedGeneration: gen - 1, models: { digits: { version: '1.0.0', state: 'failed' as const } } };
    h.engine.onDeviceReported(d!, stale);
    h.engine.tick();
    expect(h.inState('stale', 'notified')).toEqual([d]);
  });
});
