import type { DesiredState, ShadowGate } from '@flotilla/protocol';
import type { DeviceStore } from '../fleet/device-store.ts';

/** Sends a committed desired state to its device (FleetAdmin does: retained on the device's desired topic). */
export interface DesiredPublisher {
  publishDesired(deviceId: string, desired: DesiredState): Promise<void>;
}

/** What the rollout puts into `desired.models[model]`: the version plus the activation contract (docs/rollouts.md). */
export type DesiredModelEntry = { version: string } & Record<string, unknown>;

/**
 * Adds the stage's shadow gate to a device's entry: the device then holds the new version in shadow
 * on live traffic and activates it only past the gate (docs/ota.md, "Shadow runs"). A refused
 * candidate reports FLT_OTA_SHADOW_DISAGREED, which counts as a failed device.
 */
export function withStageShadow(entry: DesiredModelEntry, stage: { shadow?: ShadowGate } | undefined): DesiredModelEntry {
  if (stage?.shadow) entry.shadow = { ...stage.shadow };
  return entry;
}

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
