import type { Inventory } from '@flotilla/protocol';
import { detectNvidia } from './nvidia.ts';
import { distroFromOsRelease } from './os-release.ts';
import { systemProbes, type SystemProbes } from './probes.ts';
import { onnxruntimeProber, type ProbeProvider, type ProviderProber } from './providers.ts';

export interface InventoryOptions {
  dataDir: string;
  agentVersion: string;
  providers: readonly ProbeProvider[];
  commandTimeoutMs: number;
}

export interface InventoryDeps {
  probes?: SystemProbes;
  prober?: ProviderProber;
}

/** What the agent reports about itself on every connect and in its enrollment request. */
export interface InventorySource {
  collect(): Promise<Inventory>;
}

export async function collectInventory(opts: InventoryOptions, deps: InventoryDeps = {}): Promise<Inventory> {
  const probes = deps.probes ?? systemProbes;
  const prober = deps.prober ?? onnxruntimeProber;
  const [osRelease, disk, nvidia, eps] = await Promise.all([
    probes.readText('/etc/os-release'),
    probes.statfs(opts.dataDir),
    detectNvidia(probes, opts.commandTimeoutMs),
    prober(opts.providers),
  ]);
  const cpus = probes.cpus();
  const distro = distroFromOsRelease(osRelease);
  const inventory: Inventory = {
    arch: probes.arch().slice(0, 32),
    os: distro
      ? { platform: probes.platform().slice(0, 256), release: probes.release().slice(0, 256), distro }
      : { platform: probes.platform().slice(0, 256), release: probes.release().slice(0, 256) },
    cpu: { model: (cpus[0]?.model ?? 'unknown').trim().slice(0, 256), cores: Math.min(4096, Math.max(1, cpus.length)) },
    memoryBytes: Math.max(0, Math.round(probes.totalMemBytes())),
    disk: { path: opts.dataDir.slice(0, 256), totalBytes: disk?.totalBytes ?? 0, freeBytes: disk?.freeBytes ?? 0 },
    gpu: nvidia.gpu,
    executionProviders: eps.available,
    agentVersion: opts.agentVersion,
  };
  if (nvidia.cudaVersion) inventory.cudaVersion = nvidia.cudaVersion;
  if (nvidia.tensorrtVersion) inventory.tensorrtVersion = nvidia.tensorrtVersion;
  if (nvidia.jetpackVersion) inventory.jetpackVersion = nvidia.jetpackVersion;
  if (eps.runtimeVersion) inventory.onnxruntimeVersion = eps.runtimeVersion;
  return inventory;
}
