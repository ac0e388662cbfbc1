import { apiPath, type ApiClient } from '@flotilla/cli';
import type { DeviceView } from '@flotilla/protocol';
import { waitFor } from '../wait.ts';

export function device(api: ApiClient, id: string): Promise<DeviceView> {
  return api.get<DeviceView>(apiPath`/v1/devices/${id}`);
}

/** The version a device reports running for `model`, and in which state (null when it reports none). */
export function reportedModel(d: DeviceView, model: string): { version: string | null; state: string; error?: string | undefined } | null {
  return d.reported?.models[model] ?? null;
}

/** True once the device applied its newest desired state and reports `version` healthy. */
export function healthyOn(d: DeviceView, model: string, version: string): boolean {
  const m = reportedModel(d, model);
  return (d.reported?.appliedGeneration ?? 0) >= (d.desired?.generation ?? 0) && m?.version === version && m.state === 'healthy';
}

/** Waits until every device is accepted, online and has sent its inventory (rollouts need it to pick a variant). */
export async function waitForFleet(api: ApiClient, ids: readonly string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<DeviceView[]> {
  return waitFor(
    () => Promise.all(ids.map((id) => device(api, id))),
    (ds) => ds.every((d) => d.status === 'accepted' && d.online && d.inventory !== null),
    {
      what: 'every agent to enroll and connect',
      timeoutMs: opts.timeoutMs,
      intervalMs: 250,
      ...(opts.signal ? { signal: opts.signal } : {}),
      describe: (ds) => (Array.isArray(ds) ? (ds as DeviceView[]).map((d) => `${d.id}: ${d.status}${d.online ? ', online' : ''}`).join('; ') : String(ds)),
    },
  );
}
