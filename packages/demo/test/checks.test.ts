import { describe, expect, it } from 'vitest';
import { evaluateChecks, type DemoObservations, type DeviceOutcome } from '../src/report/checks.ts';
import { renderSummary } from '../src/report/summary-table.ts';
import { emptyTraffic } from '../src/traffic/device-traffic.ts';

const versions = { v1: '1.0.0', v2: '2.0.0', v3: '3.0.0' };

function deviceOutcome(id: string, over: Partial<DeviceOutcome> = {}): DeviceOutcome {
  return {
    deviceId: id,
    canary: false,
    running: { version: '2.0.0', state: 'healthy' },
    traffic: { ...emptyTraffic(), requests: 100, edge: 80, cloud: 18, edgeFallback: 2, correct: 95, byVersion: { '1.0.0': 40, '2.0.0': 42 } },
    notifiedOfV3: false,
    v3Error: null,
    ...over,
  };
}

/** What a run where everything happened as it should looks like. */
function goodRun(): DemoObservations {
  return {
    versions,
    devices: [
      deviceOutcome('edge-1'),
      deviceOutcome('edge-2', { canary: true, notifiedOfV3: true, v3Error: 'FLT_OTA_SELFTEST_FAILED' }),
      deviceOutcome('edge-3'),
    ],
    v1: { id: 'v1', version: '1.0.0', state: 'completed', reason: null, counts: { succeeded: 3 }, durationMs: 8_000 },
    v2: { id: 'v2', version: '2.0.0', state: 'completed', reason: null, counts: { succeeded: 3, failed: 0 }, durationMs: 20_000 },
    v3: { id: 'v3', version: '3.0.0', state: 'reverted', reason: 'aborted: any 1 of 1 executed', counts: { reverted: 1, pending: 2 }, durationMs: 4_000 },
    wallMs: 60_000,
  };
}

const failing = (o: DemoObservations): string[] => evaluateChecks(o).filter((c) => !c.ok).map((c) => c.name);

describe('demo checks', () => {
  it('pass when v2 completed everywhere, v3 aborted and reverted on its canary, and traffic never failed', () => {
    const checks = evaluateChecks(goodRun());
    expect(checks.length).toBeGreaterThanOrEqual(7);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('fail the v2 check when a device did not succeed', () => {
    const o = goodRun();
    o.v2 = { ...o.v2!, counts: { succeeded: 2, failed: 1 } };
    expect(failing(o)).toEqual(['v2 reached every device, stage by stage, healthy']);
  });

  it('fail the v3 check when the broken release completed instead of aborting', () => {
    const o = goodRun();
    o.v3 = { ...o.v3!, state: 'completed', reason: null };
    expect(failing(o)).toContain('v3 rollout aborted and reverted by itself');
  });

  it('fail when the canary failed for some other reason than its self-test', () => {
    const o = goodRun();
    o.devices[1] = { ...o.devices[1]!, v3Error: 'FLT_ROLLOUT_DEVICE_TIMEOUT' };
    expect(failing(o)).toEqual(['the v3 canary refused v3: golden self-test failed']);
  });

  it('fail when the canary did not come back to v2', () => {
    const o = goodRun();
    o.devices[1] = { ...o.devices[1]!, running: { version: '3.0.0', state: 'healthy' } };
    expect(failing(o)).toEqual(['the canary serves v2 again']);
  });

  it('fail when a device behind the canary was sent v3', () => {
    const o = goodRun();
    o.devices[2] = { ...o.devices[2]!, notifiedOfV3: true };
    expect(failing(o)).toEqual(['devices behind the canary were never sent v3 and still serve v2']);
  });

  it('fail when one inference request failed or a device answered none', () => {
    const o = goodRun();
    o.devices[0] = { ...o.devices[0]!, traffic: { ...o.devices[0]!.traffic, failed: 1, lastError: 'HTTP 503' } };
    expect(failing(o)).toEqual(['no inference request failed, every device answered']);
    const quiet = goodRun();
    quiet.devices[2] = { ...quiet.devices[2]!, traffic: emptyTraffic() };
    expect(failing(quiet)).toEqual(['no inference request failed, every device answered']);
  });

  it('fail when the pool answered nothing', () => {
    const o = goodRun();
    o.devices = o.devices.map((d) => ({ ...d, traffic: { ...d.traffic, cloud: 0 } }));
    expect(failing(o)).toEqual(['the cloud pool answered some requests']);
  });

  it('fail every rollout check when the story stopped before the rollouts', () => {
    const o: DemoObservations = { versions, devices: [], v1: null, v2: null, v3: null, wallMs: 5_000 };
    expect(evaluateChecks(o).every((c) => !c.ok)).toBe(true);
  });
});

describe('demo summary', () => {
  it('shows each device with its version and where its answers came from, each rollout, each check and the wall time', () => {
    const o = goodRun();
    const text = renderSummary(o, evaluateChecks(o));
    expect(text).toMatch(/edge-2\s+v3 canary\s+2\.0\.0 \(healthy\)\s+100\s+80\s+18\s+2\s+20\.0%\s+0\s+95\.0%/);
    expect(text).toMatch(/all\s+300\s+240\s+54\s+6/);
    expect(text).toContain('v3 3.0.0  reverted after 4.0 s');
    expect(text).toContain('wall time 60.0 s; all 7 checks passed');
  });

  it('marks failed checks and counts them', () => {
    const o = goodRun();
    o.v3 = null;
    const text = renderSummary(o, evaluateChecks(o));
    expect(text).toContain('v3  did not run');
    expect(text).toMatch(/FAIL {2}v3 rollout aborted and reverted by itself: the v3 rollout did not run/);
    expect(text).toMatch(/checks FAILED/);
  });
});
