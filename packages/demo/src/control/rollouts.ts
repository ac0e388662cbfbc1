import { apiPath, type ApiClient } from '@flotilla/cli';
import type { RolloutSpec, RolloutView } from '@flotilla/protocol';
import type { ProgressLog } from '../report/progress-log.ts';
import { pause, WaitTimeout } from '../wait.ts';
import { describeRolloutEvent, type RolloutDevice, type RolloutEvent } from './rollout-events.ts';

const FINAL_STATES = new Set(['completed', 'cancelled', 'reverted', 'preempted']);

export interface RolloutOutcome {
  id: string;
  version: string;
  state: string;
  reason: string | null;
  counts: Record<string, number>;
  durationMs: number;
  devices: RolloutDevice[];
  events: RolloutEvent[];
}

/**
 * Creates a rollout and follows it to a final state, printing a line per rollout event
 * (stage started, device notified, healthy, succeeded, failed, abort, revert) as it happens.
 * Polls the events and the rollout view; the deadline bounds the whole wait.
 */
export async function runRollout(
  api: ApiClient,
  spec: RolloutSpec & { id: string },
  opts: { log: ProgressLog; label: string; timeoutMs: number; pollMs?: number; signal?: AbortSignal },
): Promise<RolloutOutcome> {
  const started = Date.now();
  await api.send('POST', '/v1/rollouts', spec);
  const events: RolloutEvent[] = [];
  let afterId = 0;
  let view: RolloutView | undefined;
  const ctx = { version: spec.version, stages: spec.stages.length };
  for (;;) {
    opts.signal?.throwIfAborted();
    // The view first: once it is final, every event of the rollout is committed, so the events
    // read next hold all of them.
    view = await api.get<RolloutView>(apiPath`/v1/rollouts/${spec.id}`);
    const page = await api.get<{ items: RolloutEvent[] }>(apiPath`/v1/rollouts/${spec.id}/events`, { devices: true, afterId });
    for (const e of page.items) {
      afterId = Math.max(afterId, e.id);
      events.push(e);
      const text = describeRolloutEvent(e, ctx);
      if (text) opts.log.line(`${opts.label} │ ${text}`);
    }
    if (FINAL_STATES.has(view.state)) break;
    if (Date.now() - started > opts.timeoutMs) {
      throw new WaitTimeout(`rollout ${spec.id} to finish`, opts.timeoutMs, `state ${view.state}, stage ${view.stage + 1}, counts ${JSON.stringify(view.counts)}`);
    }
    await pause(opts.pollMs ?? 250, opts.signal);
  }
  const devices = await api.get<{ items: RolloutDevice[] }>(apiPath`/v1/rollouts/${spec.id}/devices`, { limit: 1000 });
  return {
    id: spec.id,
    version: spec.version,
    state: view.state,
    reason: view.reason,
    counts: view.counts,
    durationMs: Date.now() - started,
    devices: devices.items,
    events,
  };
}
