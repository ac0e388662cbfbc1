import type { ExecutionProvider, Inventory } from '@flotilla/protocol';
import type { ReleaseVariant, VariantConstraints } from './manifest-schema.ts';

/** The inventory fields variant matching reads; a full protocol `Inventory` fits. */
export type HardwareInventory = Pick<Inventory, 'arch' | 'gpu' | 'tensorrtVersion' | 'jetpackVersion' | 'executionProviders'>;

export type MatchResult = { ok: true } | { ok: false; reasons: string[] };

/** Node reports arm64/x64, uname reports aarch64/x86_64, Debian says amd64: compare one spelling. */
const ARCH_ALIASES: Record<string, string> = {
  aarch64: 'arm64',
  arm64: 'arm64',
  x86_64: 'x64',
  amd64: 'x64',
  x64: 'x64',
  armv7l: 'arm',
  armhf: 'arm',
  arm: 'arm',
};

export function normalizeArch(arch: string): string {
  const lower = arch.trim().toLowerCase();
  return ARCH_ALIASES[lower] ?? lower;
}

function ccValue(cc: string): number {
  const [major, minor] = cc.split('.').map(Number);
  return (major ?? 0) * 10 + (minor ?? 0);
}

/** Leading numeric parts of a version string ("8.6.1.6-1+cuda12.0" → [8, 6, 1, 6]); null when none. */
function versionParts(version: string): number[] | null {
  const match = /^\s*v?(\d+(?:\.\d+)*)/.exec(version);
  return match ? match[1]!.split('.').map(Number) : null;
}

/**
 * A constraint version matches every device version it is a prefix of: "8.6" matches 8.6.0 and
 * 8.6.1.6, "8.6.1" does not match a device that only says "8.6" (it cannot be shown to fit).
 */
export function versionMatches(required: string, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  const want = versionParts(required);
  const have = versionParts(actual);
  if (!want || !have || have.length < want.length) return false;
  return want.every((part, i) => have[i] === part);
}

/** CPU is always there: onnxruntime ships its CPU provider on every platform. */
export function providerAvailable(provider: ExecutionProvider, inventory: HardwareInventory): boolean {
  return provider === 'cpu' || inventory.executionProviders.includes(provider);
}

function providerList(inventory: HardwareInventory): string {
  const list = [...new Set<string>([...inventory.executionProviders, 'cpu'])];
  return list.join(', ');
}

/** Checks every constraint and reports every reason it fails, not just the first. */
export function matchConstraints(constraints: VariantConstraints, inventory: HardwareInventory): MatchResult {
  const reasons: string[] = [];
  if (constraints.arch !== undefined) {
    const arch = normalizeArch(inventory.arch);
    if (!constraints.arch.some((a) => normalizeArch(a) === arch)) {
      reasons.push(`arch ${inventory.arch} is not one of ${constraints.arch.join(', ')}`);
    }
  }
  if (constraints.executionProvider !== undefined && !providerAvailable(constraints.executionProvider, inventory)) {
    reasons.push(`execution provider ${constraints.executionProvider} is not available (device has ${providerList(inventory)})`);
  }
  const gpuCc = inventory.gpu?.computeCapability;
  if (constraints.computeCapability !== undefined) {
    if (gpuCc === undefined) reasons.push(`needs a GPU with compute capability ${constraints.computeCapability}, device has no GPU`);
    else if (ccValue(gpuCc) !== ccValue(constraints.computeCapability)) {
      reasons.push(`built for compute capability ${constraints.computeCapability}, device GPU is ${gpuCc}`);
    }
  }
  if (constraints.minComputeCapability !== undefined) {
    if (gpuCc === undefined) reasons.push(`needs a GPU with compute capability >= ${constraints.minComputeCapability}, device has no GPU`);
    else if (ccValue(gpuCc) < ccValue(constraints.minComputeCapability)) {
      reasons.push(`needs compute capability >= ${constraints.minComputeCapability}, device GPU is ${gpuCc}`);
    }
  }
  if (constraints.tensorrtVersion !== undefined && !versionMatches(constraints.tensorrtVersion, inventory.tensorrtVersion)) {
    reasons.push(
      inventory.tensorrtVersion === undefined
        ? `built for TensorRT ${constraints.tensorrtVersion}, device reports no TensorRT`
        : `built for TensorRT ${constraints.tensorrtVersion}, device has ${inventory.tensorrtVersion}`,
    );
  }
  if (constraints.jetpackVersion !== undefined && !versionMatches(constraints.jetpackVersion, inventory.jetpackVersion)) {
    reasons.push(
      inventory.jetpackVersion === undefined
        ? `built for JetPack ${constraints.jetpackVersion}, device reports no JetPack`
        : `built for JetPack ${constraints.jetpackVersion}, device has ${inventory.jetpackVersion}`,
    );
  }
  return reasons.length === 0 ? { ok: true } : { ok: false, reasons };
}

export type VariantMatch = { ok: true; provider: ExecutionProvider } | { ok: false; reasons: string[] };

/**
 * Whether a variant can run here, and on which provider. On top of its declared constraints, a
 * TensorRT plan needs a GPU and a way to load plans (the tensorrt provider or a local Triton).
 * An ONNX variant without a declared provider runs on the best provider for its precision:
 * fp16/fp32 on tensorrt, then cuda, then cpu; int8 on cpu (Flotilla's int8 builds are CPU builds).
 */
export function matchVariant(variant: ReleaseVariant, inventory: HardwareInventory): VariantMatch {
  const constraints = matchConstraints(variant.constraints, inventory);
  const reasons = constraints.ok ? [] : [...constraints.reasons];
  const declared = variant.constraints.executionProvider;
  let provider: ExecutionProvider = declared ?? 'cpu';

  if (variant.format === 'tensorrt-plan') {
    if (inventory.gpu === null && variant.constraints.computeCapability === undefined) reasons.push('a TensorRT plan needs a GPU, device has none');
    if (declared === undefined) {
      const loader = (['tensorrt', 'triton'] as const).find((p) => inventory.executionProviders.includes(p));
      if (loader) provider = loader;
      else reasons.push(`a TensorRT plan needs the tensorrt or triton provider (device has ${providerList(inventory)})`);
    }
  } else if (declared === undefined && variant.precision !== 'int8') {
    provider = (['tensorrt', 'cuda'] as const).find((p) => inventory.executionProviders.includes(p)) ?? 'cpu';
  }
  return reasons.length === 0 ? { ok: true, provider } : { ok: false, reasons };
}
