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
 * Adds the stage's A/B split to a device's entry until the stage's A/B gate passed: the device then
 * serves `share` of its requests from the new version beside the old one (docs/ota.md, "A/B traffic").
 * Once the gate passed, the entry goes out without the split and the device activates the new version.
 */
export function withStageAb(entry: DesiredModelEntry, stage: { ab?: { share: number; sticky?: string } } | undefined, passed: boolean): DesiredModelEntry {
  if (stage?.ab && !passed) entry.ab = { share: stage.ab.share, ...(stage.ab.sticky !== undefined && { sticky: stage.ab.sticky }) };
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
