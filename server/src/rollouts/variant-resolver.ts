import { FlotillaError } from '@flotilla/protocol';

/** The variant of a release a device gets, as the rollout passes it on in the desired state. */
export interface VariantChoice {
  variant: string;
  format?: string;
  precision?: string;
  provider?: string;
}

/**
 * Resolves the variant for one device. Returns null when it has no opinion (the device picks from
 * the signed manifest itself); throws a FlotillaError with FLT_OTA_INCOMPATIBLE when no variant can
 * run on the device, which skips that device.
 */
export interface RolloutVariantResolver {
  resolve(model: string, version: string, deviceId: string): VariantChoice | null;
}

export const noVariantResolver: RolloutVariantResolver = { resolve: () => null };

/** The registry's resolver, seen structurally so rollouts do not depend on the registry module. */
export interface RegistryVariantLookup {
  forDevice(model: string, version: string, deviceId: string): { variant: { id: string; format: string; precision: string }; provider: string };
}

/**
 * Adapts the registry: a definite "nothing fits this hardware" skips the device; anything the
 * registry cannot decide yet (no inventory, unknown version) leaves the choice to the device.
 */
export function variantResolverFromRegistry(registry: RegistryVariantLookup): RolloutVariantResolver {
  return {
    resolve(model, version, deviceId) {
      try {
        const r = registry.forDevice(model, version, deviceId);
        return { variant: r.variant.id, format: r.variant.format, precision: r.variant.precision, provider: r.provider };
      } catch (err) {
        if (err instanceof FlotillaError && err.code === 'FLT_OTA_INCOMPATIBLE') throw err;
        return null;
      }
    },
  };
}
