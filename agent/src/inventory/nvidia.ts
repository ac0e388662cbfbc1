import type { SystemProbes } from './probes.ts';

export interface GpuFacts {
  gpu: { name: string; computeCapability: string; memoryBytes?: number } | null;
  cudaVersion?: string;
  tensorrtVersion?: string;
  jetpackVersion?: string;
}

const CC = /^[0-9]{1,2}\.[0-9]$/;

/** First line of `nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(stdout: string | undefined): GpuFacts['gpu'] {
  const line = stdout?.split('\n').find((l) => l.trim() !== '');
  if (!line) return null;
  const [name, cc, memMiB] = line.split(',').map((s) => s.trim());
  if (!name || !cc || !CC.test(cc)) return null;
  const mem = Number(memMiB);
  return Number.isFinite(mem) && mem > 0
    ? { name: name.slice(0, 256), computeCapability: cc, memoryBytes: Math.round(mem * 1024 * 1024) }
    : { name: name.slice(0, 256), computeCapability: cc };
}

/** Jetson modules by the name in /proc/device-tree/model, with their GPU compute capability. */
const JETSON_MODULES: ReadonlyArray<[RegExp, string, string]> = [
  [/thor/i, 'Jetson Thor', '11.0'],
  [/orin/i, 'Jetson Orin', '8.7'],
  [/xavier/i, 'Jetson Xavier', '7.2'],
  [/tx2/i, 'Jetson TX2', '6.2'],
  [/nano/i, 'Jetson Nano', '5.3'],
  [/tx1/i, 'Jetson TX1', '5.3'],
];

export function jetsonGpuFromModel(model: string | undefined): GpuFacts['gpu'] {
  if (!model) return null;
  const clean = model.replace(/\0/g, '').trim();
  if (!/jetson|nvidia/i.test(clean)) return null;
  for (const [re, , cc] of JETSON_MODULES) if (re.test(clean)) return { name: clean.slice(0, 256), computeCapability: cc };
  return null;
}

/** L4T release from /etc/nv_tegra_release: "# R35 (release), REVISION: 4.1, ..." → "35.4.1". */
export function l4tFromTegraRelease(text: string | undefined): string | undefined {
  const m = text ? /R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)/.exec(text) : null;
  return m ? `${m[1]}.${m[2]!.replace(/\.$/, '')}` : undefined;
}

/** JetPack release that ships a given L4T release (NVIDIA's published pairing). */
const L4T_TO_JETPACK: ReadonlyArray<[string, string]> = [
  ['36.4.3', '6.2'],
  ['36.4', '6.1'],
  ['36.3', '6.0'],
  ['36.2', '6.0 DP'],
  ['35.6', '5.1.4'],
  ['35.5', '5.1.3'],
  ['35.4.1', '5.1.2'],
  ['35.3.1', '5.1.1'],
  ['35.2.1', '5.1'],
  ['35.1', '5.0.2'],
  ['34.1.1', '5.0.1 DP'],
  ['32.7.5', '4.6.5'],
  ['32.7.4', '4.6.4'],
  ['32.7.3', '4.6.3'],
  ['32.7.2', '4.6.2'],
  ['32.7.1', '4.6.1'],
  ['32.6.1', '4.6'],
  ['32.5', '4.5'],
];

export function jetpackFromL4t(l4t: string | undefined): string | undefined {
  if (!l4t) return undefined;
  for (const [prefix, jp] of L4T_TO_JETPACK) if (l4t === prefix || l4t.startsWith(prefix + '.')) return jp;
  return undefined;
}

/** "12.2.140" from /usr/local/cuda/version.json, or "10.2.89" from the older version.txt. */
export function cudaFromFiles(versionJson: string | undefined, versionTxt: string | undefined): string | undefined {
  if (versionJson) {
    try {
      const v = (JSON.parse(versionJson) as { cuda?: { version?: unknown } }).cuda?.version;
      if (typeof v === 'string' && v.length <= 32) return v;
    } catch {
      // fall through to version.txt
    }
  }
  const m = versionTxt ? /CUDA Version\s+([0-9.]+)/.exec(versionTxt) : null;
  return m?.[1];
}

/** "8.6.2" from the NV_TENSORRT_MAJOR/MINOR/PATCH defines of NvInferVersion.h. */
export function tensorrtFromHeader(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const part = (name: string): string | undefined => new RegExp(`#define\\s+NV_TENSORRT_${name}\\s+(\\d+)`).exec(text)?.[1];
  const major = part('MAJOR') ?? part('VERSION_MAJOR');
  const minor = part('MINOR') ?? part('VERSION_MINOR');
  const patch = part('PATCH') ?? part('VERSION_PATCH');
  return major && minor ? [major, minor, patch].filter(Boolean).join('.') : undefined;
}

function debianVersion(stdout: string | undefined): string | undefined {
  const v = stdout?.trim().replace(/^\d+:/, '').split(/[-+~]/)[0];
  return v && /^[0-9][0-9.]*$/.test(v) ? v.slice(0, 32) : undefined;
}

/** GPU, CUDA, TensorRT and JetPack facts; every probe is optional and bounded by the timeout. */
export async function detectNvidia(probes: SystemProbes, commandTimeoutMs: number): Promise<GpuFacts> {
  const multiarch = probes.arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const [smi, model, tegra, cudaJson, cudaTxt, trtHeader, jetpackPkg] = await Promise.all([
    probes.run('nvidia-smi', ['--query-gpu=name,compute_cap,memory.total', '--format=csv,noheader,nounits'], commandTimeoutMs),
    probes.readText('/proc/device-tree/model'),
    probes.readText('/etc/nv_tegra_release'),
    probes.readText('/usr/local/cuda/version.json'),
    probes.readText('/usr/local/cuda/version.txt'),
    probes.readText(`/usr/include/${multiarch}/NvInferVersion.h`),
    probes.run('dpkg-query', ['-W', '-f=${Version}', 'nvidia-jetpack'], commandTimeoutMs),
  ]);
  // On a Jetson, nvidia-smi is missing or reports no compute capability; the board model names it.
  const gpu = parseNvidiaSmi(smi) ?? (tegra !== undefined || model !== undefined ? jetsonGpuFromModel(model) : null);
  const facts: GpuFacts = { gpu };
  const cuda = cudaFromFiles(cudaJson, cudaTxt);
  if (cuda) facts.cudaVersion = cuda;
  const trt = tensorrtFromHeader(trtHeader);
  if (trt) facts.tensorrtVersion = trt;
  const jetpack = debianVersion(jetpackPkg) ?? jetpackFromL4t(l4tFromTegraRelease(tegra));
  if (jetpack) facts.jetpackVersion = jetpack;
  return facts;
}
