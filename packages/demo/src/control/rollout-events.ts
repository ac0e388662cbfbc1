/** The fields of `GET /v1/rollouts/:id/events` items the demo reads. */
export interface RolloutEvent {
  id: number;
  ts: number;
  stage: number | null;
  kind: string;
  deviceId: string | null;
  details: unknown;
}

/** The fields of `GET /v1/rollouts/:id/devices` items the demo reads. */
export interface RolloutDevice {
  deviceId: string;
  stage: number;
  state: string;
  fromVersion: string | null;
  notifiedAt: number | null;
  error: string | null;
}

function field(details: unknown, key: string): unknown {
  return details && typeof details === 'object' ? (details as Record<string, unknown>)[key] : undefined;
}

/**
 * One progress line for a rollout event, or null for events not worth a line. `stages` is the
 * number of stages, so a stage reads "stage 2/3" (the engine counts from 0).
 */
export function describeRolloutEvent(e: RolloutEvent, ctx: { version: string; stages: number }): string | null {
  const who = e.deviceId ?? '';
  const stage = e.stage === null ? '' : `stage ${e.stage + 1}/${ctx.stages}`;
  switch (e.kind) {
    case 'created':
      return `created: ${String(field(e.details, 'targetCount') ?? '?')} devices, cumulative stage sizes ${JSON.stringify(field(e.details, 'cumulative') ?? [])}`;
    case 'stage.started':
      return `${stage} started`;
    case 'stage.completed':
      return `${stage} completed`;
    case 'device.notified':
      return `${who} notified of ${ctx.version} (desired generation ${String(field(e.details, 'generation') ?? '?')})`;
    case 'device.healthy':
      return `${who} reports ${ctx.version} healthy, baking`;
    case 'device.succeeded':
      return `${who} succeeded`;
    case 'device.failed':
      return `${who} FAILED: ${String(field(e.details, 'error') ?? 'no error code')}`;
    case 'device.rejected':
      return `${who} went back to ${String(field(e.details, 'serving') ?? '?')} on its own`;
    case 'device.timedOut':
      return `${who} timed out`;
    case 'device.retry':
      return `${who} is sent ${ctx.version} again`;
    case 'device.skipped':
      return `${who} skipped`;
    case 'device.reverted':
      return `${who} told to go back to ${String(field(e.details, 'to') ?? 'no version')}`;
    case 'aborted':
      return `ABORTED (${String(field(e.details, 'cause') ?? '?')}): ${String(field(e.details, 'why') ?? '')} → ${String(field(e.details, 'action') ?? '?')}`;
    case 'reverted':
      return `reverted: ${String(field(e.details, 'devices') ?? '?')} device(s) sent back`;
    case 'completed':
      return 'completed';
    default:
      return `${e.kind}${who ? ` ${who}` : ''}`;
  }
}
