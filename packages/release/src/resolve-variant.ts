import { FlotillaError } from '@flotilla/protocol';
import type { ExecutionProvider } from '@flotilla/protocol';
import type { ReleaseManifest, ReleaseVariant } from './manifest-schema.ts';
import { matchVariant, type HardwareInventory } from './hardware-match.ts';

/**
 * Preference order, best first. A plan built for this exact GPU and TensorRT beats anything that
 * has to be compiled or interpreted at load time; on a GPU provider half precision beats full;
 * on CPU int8 beats fp32, and fp16 on CPU (emulated, slow) comes last.
 */
export const VARIANT_PREFERENCE = [
  'tensorrt-plan built for this GPU and TensorRT version',
  'onnx fp16 on a GPU provider',
  'onnx fp32 on a GPU provider',
  'onnx int8 on a GPU provider',
  'onnx int8 on cpu',
  'onnx fp32 on cpu',
  'onnx fp16 on cpu',
] as const;

const PROVIDER_ORDER: Record<ExecutionProvider, number> = { tensorrt: 0, cuda: 1, triton: 2, cpu: 3 };

function tierOf(variant: ReleaseVariant, provider: ExecutionProvider): number {
  if (variant.format === 'tensorrt-plan') return 0;
  const onGpu = provider !== 'cpu';
  const byPrecision = onGpu ? { fp16: 1, fp32: 2, int8: 3 } : { int8: 4, fp32: 5, fp16: 6 };
  return byPrecision[variant.precision];
}

/** Declared constraints count: a build aimed more narrowly at this device is preferred among equals. */
function specificity(variant: ReleaseVariant): number {
  return Object.values(variant.constraints).filter((v) => v !== undefined).length;
}

export interface VariantVerdict {
  id: string;
  format: ReleaseVariant['format'];
  precision: ReleaseVariant['precision'];
  accepted: boolean;
  /** Why it was rejected; empty when accepted. */
  reasons: string[];
  /** Where it would run; only when accepted. */
  provider?: ExecutionProvider;
  /** 1-based position in VARIANT_PREFERENCE; only when accepted. */
  preference?: number;
  preferenceLabel?: string;
}

export interface VariantExplanation {
  /** Every variant, in manifest order. */
  candidates: VariantVerdict[];
  /** Accepted variant ids, best first. */
  ranking: string[];
  winner: string | null;
  /** One sentence for an admin: why the winner won, or why nothing fits. */
  why: string;
}

export type VariantResolution =
  | { ok: true; variant: ReleaseVariant; provider: ExecutionProvider; explanation: VariantExplanation }
  | { ok: false; code: 'FLT_OTA_INCOMPATIBLE'; explanation: VariantExplanation };

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Picks the best variant for a device and explains the choice. Ranking: preference tier, then
 * provider (tensorrt, cuda, triton, cpu), then more declared constraints, then variant id, so the
 * same inputs always give the same answer.
 */
export function resolveVariant(manifestOrVariants: ReleaseManifest | readonly ReleaseVariant[], inventory: HardwareInventory): VariantResolution {
  const variants: readonly ReleaseVariant[] = 'variants' in manifestOrVariants ? manifestOrVariants.variants : manifestOrVariants;
  const candidates: VariantVerdict[] = [];
  const accepted: Array<{ variant: ReleaseVariant; provider: ExecutionProvider; tier: number }> = [];

  for (const variant of variants) {
    const base = { id: variant.id, format: variant.format, precision: variant.precision };
    const match = matchVariant(variant, inventory);
    if (!match.ok) {
      candidates.push({ ...base, accepted: false, reasons: match.reasons });
      continue;
    }
    const tier = tierOf(variant, match.provider);
    candidates.push({ ...base, accepted: true, reasons: [], provider: match.provider, preference: tier + 1, preferenceLabel: VARIANT_PREFERENCE[tier] });
    accepted.push({ variant, provider: match.provider, tier });
  }

  accepted.sort(
    (a, b) =>
      a.tier - b.tier ||
      PROVIDER_ORDER[a.provider] - PROVIDER_ORDER[b.provider] ||
      specificity(b.variant) - specificity(a.variant) ||
      compareIds(a.variant.id, b.variant.id),
  );
  const ranking = accepted.map((a) => a.variant.id);
  const best = accepted[0];
  if (!best) {
    const why = variants.length === 0
      ? 'no variant fits this device: the release has no variants'
      : `no variant fits this device: ${candidates.map((c) => `${c.id} (${c.reasons.join('; ')})`).join('; ')}`;
    return { ok: false, code: 'FLT_OTA_INCOMPATIBLE', explanation: { candidates, ranking, winner: null, why } };
  }

  const parts = [`${best.variant.id} chosen: ${VARIANT_PREFERENCE[best.tier]} (preference ${best.tier + 1} of ${VARIANT_PREFERENCE.length}) on ${best.provider}`];
  for (const other of accepted.slice(1)) {
    let because: string;
    if (other.tier !== best.tier) because = `${VARIANT_PREFERENCE[other.tier]} ranks lower`;
    else if (other.provider !== best.provider) because = `same preference, but ${other.provider} ranks below ${best.provider}`;
    else if (specificity(other.variant) !== specificity(best.variant)) because = 'same preference, but it declares fewer hardware constraints';
    else because = 'same preference and constraints, ordered by variant id';
    parts.push(`${other.variant.id}: ${because}`);
  }
  const rejected = candidates.filter((c) => !c.accepted).map((c) => `${c.id} rejected (${c.reasons.join('; ')})`);
  const why = [...parts, ...rejected].join('; ');
  return { ok: true, variant: best.variant, provider: best.provider, explanation: { candidates, ranking, winner: best.variant.id, why } };
}

/** The agent's preflight: throws FLT_OTA_INCOMPATIBLE, with every reason, when a variant cannot run here. */
export function assertVariantCompatible(variant: ReleaseVariant, inventory: HardwareInventory): ExecutionProvider {
  const match = matchVariant(variant, inventory);
  if (!match.ok) {
    throw new FlotillaError('FLT_OTA_INCOMPATIBLE', `variant ${variant.id} cannot run on this device: ${match.reasons.join('; ')}`, {
      variantId: variant.id,
      reasons: match.reasons,
    });
  }
  return match.provider;
}
