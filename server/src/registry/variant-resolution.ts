import { FlotillaError, type ExecutionProvider } from '@flotilla/protocol';
import { resolveVariant, type HardwareInventory, type ReleaseManifest, type ReleaseVariant, type VariantExplanation } from '@flotilla/release';
import type { DeviceStore } from '../fleet/device-store.ts';
import type { ModelRegistry } from './model-registry.ts';

export interface Resolution {
  model: string;
  version: string;
  device: string | null;
  variant: ReleaseVariant;
  provider: ExecutionProvider;
  explanation: VariantExplanation;
}

/**
 * Which variant of a version a device should run, and why, decided by `@flotilla/release`'s
 * `resolveVariant`. A published version is resolved from its manifest (what devices verify); a
 * draft from the variants uploaded so far, so an operator can check a build before publishing.
 */
export class VariantResolver {
  readonly #registry: ModelRegistry;
  readonly #devices: DeviceStore;

  constructor(deps: { registry: ModelRegistry; devices: DeviceStore }) {
    this.#registry = deps.registry;
    this.#devices = deps.devices;
  }

  forDevice(model: string, version: string, deviceId: string): Resolution {
    const device = this.#devices.get(deviceId);
    if (!device) throw new FlotillaError('FLT_DEVICE_NOT_FOUND', `no device ${deviceId}`);
    if (!device.inventory) throw new FlotillaError('FLT_REGISTRY_NO_INVENTORY', `device ${deviceId} has not reported an inventory yet`);
    return this.forInventory(model, version, device.inventory, deviceId);
  }

  forInventory(model: string, version: string, inventory: HardwareInventory, deviceId: string | null = null): Resolution {
    const variants = this.#candidates(model, version);
    const result = resolveVariant(variants, inventory);
    if (!result.ok) throw new FlotillaError('FLT_OTA_INCOMPATIBLE', result.explanation.why, { explanation: result.explanation });
    return { model, version, device: deviceId, variant: result.variant, provider: result.provider, explanation: result.explanation };
  }

  #candidates(model: string, version: string): ReleaseVariant[] {
    const row = this.#registry.requireVersion(model, version);
    if (row.manifest !== null) return (JSON.parse(row.manifest) as ReleaseManifest).variants;
    // Draft variants without an artifact yet cannot be offered to anyone: leave them out.
    return this.#registry
      .variants(model, version)
      .filter((v) => v.sha256 !== null && v.length !== null)
      .map((v) => ({
        id: v.id,
        file: { name: v.file_name, sha256: v.sha256!, length: v.length! },
        format: v.format,
        precision: v.precision,
        constraints: JSON.parse(v.constraints) as ReleaseVariant['constraints'],
      }));
  }
}
