import { totalTraffic, type DeviceTraffic } from '../traffic/device-traffic.ts';

/** How one rollout ended, as the summary and the checks need it. */
export interface RolloutResult {
  id: string;
  version: string;
  state: string;
  reason: string | null;
  counts: Record<string, number>;
  durationMs: number;
}

export interface DeviceOutcome {
  deviceId: string;
  /** The device the v3 rollout tried first. */
  canary: boolean;
  /** What the device reports running at the end. */
  running: { version: string | null; state: string } | null;
  traffic: DeviceTraffic;
  /** Whether the v3 rollout ever wrote v3 into this device's desired state. */
  notifiedOfV3: boolean;
  /** The error code the v3 rollout recorded for this device, if any. */
  v3Error: string | null;
}

/** Everything the demo saw; parts it never got to (a step that failed) are null. */
export interface DemoObservations {
  versions: { v1: string; v2: string; v3: string };
  devices: DeviceOutcome[];
  v1: RolloutResult | null;
  v2: RolloutResult | null;
  v3: RolloutResult | null;
  wallMs: number;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

function check(name: string, ok: boolean, detail: string): CheckResult {
  return { name, ok, detail };
}

/** What the demo promises, each judged from the observations alone. */
export function evaluateChecks(o: DemoObservations): CheckResult[] {
  const n = o.devices.length;
  const { v2: v2Version } = o.versions;
  const canaries = o.devices.filter((d) => d.canary);
  const canary = canaries.length === 1 ? canaries[0]! : undefined;
  const others = o.devices.filter((d) => !d.canary);
  const total = totalTraffic(o.devices.map((d) => d.traffic));
  const onV2 = (d: DeviceOutcome): boolean => d.running?.version === v2Version && d.running.state === 'healthy';

  const v2 = o.v2;
  const v2Ok = v2 !== null && v2.state === 'completed' && n > 0 && (v2.counts.succeeded ?? 0) === n && (v2.counts.failed ?? 0) === 0;
  const v3 = o.v3;
  const v3Ok = v3 !== null && v3.state === 'reverted' && (v3.reason ?? '').startsWith('aborted');
  const silent = o.devices.filter((d) => d.traffic.requests === 0).map((d) => d.deviceId);

  return [
    check(
      'v2 reached every device, stage by stage, healthy',
      v2Ok,
      v2 ? `${v2.state}, ${v2.counts.succeeded ?? 0}/${n} succeeded, ${v2.counts.failed ?? 0} failed` : 'the v2 rollout did not run',
    ),
    check('v3 rollout aborted and reverted by itself', v3Ok, v3 ? `${v3.state}${v3.reason ? `: ${v3.reason}` : ''}` : 'the v3 rollout did not run'),
    check(
      'the v3 canary refused v3: golden self-test failed',
      canary !== undefined && /SELFTEST/.test(canary.v3Error ?? ''),
      canary ? `${canary.deviceId}: ${canary.v3Error ?? 'no error recorded'}` : `${canaries.length} canaries (expected 1)`,
    ),
    check(
      'the canary serves v2 again',
      canary !== undefined && onV2(canary),
      canary ? `${canary.deviceId} runs ${canary.running?.version ?? 'nothing'} (${canary.running?.state ?? 'no report'})` : 'no canary',
    ),
    check(
      'devices behind the canary were never sent v3 and still serve v2',
      others.length > 0 && others.every((d) => !d.notifiedOfV3 && onV2(d)),
      others.map((d) => `${d.deviceId}: ${d.notifiedOfV3 ? 'NOTIFIED of v3' : 'never notified'}, runs ${d.running?.version ?? 'nothing'}`).join('; ') || 'no other devices',
    ),
    check(
      'no inference request failed, every device answered',
      total.requests > 0 && total.failed === 0 && silent.length === 0,
      `${total.requests} requests, ${total.failed} failed${silent.length ? `; no traffic answered by ${silent.join(', ')}` : ''}${total.lastError && total.failed ? `; last error: ${total.lastError}` : ''}`,
    ),
    check('the cloud pool answered some requests', total.cloud > 0, `${total.cloud} answered by the pool, ${total.edgeFallback} edge-fallback`),
  ];
}
