import type { DesiredState } from '@flotilla/protocol';
import type { DeviceStore } from '../fleet/device-store.ts';

/** Sends a committed desired state to its device (FleetAdmin does: retained on the device's desired topic). */
export interface DesiredPublisher {
  publishDesired(deviceId: string, desired: DesiredState): Promise<void>;
}

/** What the rollout puts into `desired.models[model]`: the version plus the activation contract (docs/rollouts.md). */
export type DesiredModelEntry = { version: string } & Record<string, unknown>;

/**
 * Writes one model entry of a device's desired state under the next generation, inside the caller's
 * transaction (so it commits with the rollout's own rows). `entry: null` removes the model.
 * Returns the new desired state for publishing after the commit.
 */
export function writeDesiredModel(devices: DeviceStore, deviceId: string, current: DesiredState | null, model: string, entry: DesiredModelEntry | null, now: number): DesiredState {
  const models = { ...(current?.models ?? {}) };
  if (entry) models[model] = entry;
  else delete models[model];
  const next: DesiredState = {
    ...(current ?? {}),
    models,
    generation: devices.desiredGeneration(deviceId) + 1,
  };
  devices.setDesired(deviceId, next, now);
  return next;
}
