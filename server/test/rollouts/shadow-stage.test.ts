import { afterEach, describe, expect, it } from 'vitest';
import { RolloutHarness, OPERATOR } from './harness.ts';

let h: RolloutHarness;
afterEach(() => h?.close());

const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0' };
const GATE = { share: 0.5, minSamples: 200, minAgreement: 0.98 };

describe('shadow stages', () => {
  it('writes the stage shadow gate into the desired entry of that stage’s devices only', () => {
    h = new RolloutHarness();
    h.addDevices(6);
    h.engine.create(OPERATOR, { ...base, id: 'shadowed', stages: [{ count: 2, shadow: GATE }, { percent: 100 }] });
    h.engine.tick();
    const canaries = h.inState('shadowed', 'notified');
    expect(canaries).toHaveLength(2);
    for (const id of canaries) expect(h.desired(id)!.models.digits).toEqual({ version: '2.0.0', rollout: 'shadowed', shadow: GATE });
    for (const id of canaries) h.report(id, 'digits', '2.0.0', 'healthy');
    h.engine.tick();
    expect(h.engine.get('shadowed').stage).toBe(1);
    const rest = h.inState('shadowed', 'notified');
    expect(rest.length).toBeGreaterThan(0);
    for (const id of rest) expect(h.desired(id)!.models.digits).not.toHaveProperty('shadow');
  });

  it('counts a device whose candidate the shadow gate refused as failed, so abort rules stop the rollout', () => {
    h = new RolloutHarness();
    h.addDevices(4);
    h.engine.create(OPERATOR, { ...base, id: 'refused', stages: [{ count: 2, shadow: GATE }, { percent: 100 }], abortRules: [{ failureType: 'failed', thresholdPercent: 50, minExecuted: 1 }] });
    h.engine.tick();
    const [first] = h.inState('refused', 'notified');
    h.report(first!, 'digits', '1.0.0', 'installed');
    h.engine.tick();
    expect(h.engine.get('refused').state).toBe('running');
    h.report(first!, 'digits', '1.0.0', 'failed', { error: 'FLT_OTA_SHADOW_DISAGREED' });
    h.engine.tick();
    const r = h.engine.get('refused');
    expect(r.state).not.toBe('running');
    expect(r.funnel![0]!.counts).toMatchObject({ failed: 1 });
  });

  it('refuses a stage shadow gate outside its bounds', () => {
    h = new RolloutHarness();
    h.addDevices(2);
    expect(() => h.engine.create(OPERATOR, { ...base, id: 'bad', stages: [{ percent: 100, shadow: { ...GATE, share: 0 } }] })).toThrow(/schema/);
  });
});
