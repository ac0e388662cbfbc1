import { describe, expect, it } from 'vitest';
import { Value } from 'typebox/value';
import { Inventory } from '@flotilla/protocol';
import { collectInventory } from '../src/inventory/collect.ts';
import { cudaFromFiles, jetpackFromL4t, l4tFromTegraRelease, parseNvidiaSmi, tensorrtFromHeader } from '../src/inventory/nvidia.ts';
import type { SystemProbes } from '../src/inventory/probes.ts';
import { onnxruntimeProber, type ProviderProber } from '../src/inventory/providers.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A fake machine: every file and command answer comes from the maps given. */
function fakeMachine(files: Record<string, string>, commands: Record<string, string>, arch = 'arm64'): SystemProbes {
  return {
    arch: () => arch,
    platform: () => 'linux',
    release: () => '5.15.136-tegra',
    cpus: () => Array.from({ length: 8 }, () => ({ model: 'ARMv8 Processor rev 1 (v8l)' })),
    totalMemBytes: () => 32 * 1024 ** 3,
    readText: async (path) => files[path],
    statfs: async () => ({ totalBytes: 64 * 1024 ** 3, freeBytes: 20 * 1024 ** 3 }),
    run: async (command) => commands[command],
  };
}

describe('inventory', () => {
  it('reports the CPU provider as available because it really creates and runs a session here', async () => {
    const result = await onnxruntimeProber(['tensorrt', 'cuda', 'cpu']);
    expect(result.available).toContain('cpu');
    expect(result.runtimeVersion).toMatch(/^\d+\.\d+/);
    // This machine has no GPU: onnxruntime throws for CUDA and TensorRT, and the probe catches it.
    for (const ep of ['tensorrt', 'cuda'] as const) {
      if (!result.available.includes(ep)) expect(result.failures[ep]).toBeTruthy();
    }
  });

  it('collects a schema-valid inventory of this real machine', async () => {
    const dataDir = tempDir();
    const inv = await collectInventory({ dataDir, agentVersion: '0.1.0', providers: ['cpu'], commandTimeoutMs: 2000 });
    expect(Value.Check(Inventory, inv)).toBe(true);
    expect(inv.executionProviders).toEqual(['cpu']);
    expect(inv.disk.path).toBe(dataDir);
    expect(inv.disk.totalBytes).toBeGreaterThan(0);
    expect(inv.cpu.cores).toBeGreaterThanOrEqual(1);
  });

  it('describes a fake Jetson Orin with JetPack 6, CUDA 12.2 and TensorRT 8.6 (a fake: there is no GPU here)', async () => {
    const fakeJetson = fakeMachine(
      {
        '/etc/os-release': 'NAME="Ubuntu"\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n',
        '/etc/nv_tegra_release': '# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n',
        '/proc/device-tree/model': 'NVIDIA Jetson AGX Orin Developer Kit\0',
        '/usr/local/cuda/version.json': JSON.stringify({ cuda: { name: 'CUDA SDK', version: '12.2.140' } }),
        '/usr/include/aarch64-linux-gnu/NvInferVersion.h': '#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n#define NV_TENSORRT_PATCH 2\n',
      },
      {},
    );
    const fakeGpuProviders: ProviderProber = async (providers) => ({ available: providers.filter((p) => p !== 'tensorrt'), runtimeVersion: '1.30.0', failures: {} });
    const inv = await collectInventory(
      { dataDir: '/var/lib/flotilla-agent', agentVersion: '0.1.0', providers: ['tensorrt', 'cuda', 'cpu'], commandTimeoutMs: 100 },
      { probes: fakeJetson, prober: fakeGpuProviders },
    );
    expect(Value.Check(Inventory, inv)).toBe(true);
    expect(inv).toMatchObject({
      arch: 'arm64',
      os: { platform: 'linux', distro: 'Ubuntu 22.04.4 LTS' },
      cpu: { cores: 8 },
      gpu: { name: 'NVIDIA Jetson AGX Orin Developer Kit', computeCapability: '8.7' },
      cudaVersion: '12.2.140',
      tensorrtVersion: '8.6.2',
      jetpackVersion: '6.0',
      executionProviders: ['cuda', 'cpu'],
      onnxruntimeVersion: '1.30.0',
      disk: { totalBytes: 64 * 1024 ** 3, freeBytes: 20 * 1024 ** 3 },
    });
  });

  it('reads GPU name, compute capability and memory from nvidia-smi on a fake x86 GPU server (a fake: there is no GPU here)', async () => {
    const fakeServer = fakeMachine({}, { 'nvidia-smi': 'NVIDIA A100-SXM4-40GB, 8.0, 40960\n' }, 'x64');
    const inv = await collectInventory(
      { dataDir: '/data', agentVersion: '0.1.0', providers: ['cpu'], commandTimeoutMs: 100 },
      { probes: fakeServer, prober: async () => ({ available: ['cpu'], failures: {} }) },
    );
    expect(inv.gpu).toEqual({ name: 'NVIDIA A100-SXM4-40GB', computeCapability: '8.0', memoryBytes: 40960 * 1024 * 1024 });
    expect(inv.jetpackVersion).toBeUndefined();
  });

  it('reports no GPU when nothing NVIDIA is present', async () => {
    const inv = await collectInventory(
      { dataDir: '/data', agentVersion: '0.1.0', providers: ['cpu'], commandTimeoutMs: 100 },
      { probes: fakeMachine({}, {}, 'x64'), prober: async () => ({ available: ['cpu'], failures: {} }) },
    );
    expect(inv.gpu).toBeNull();
    expect(inv.cudaVersion).toBeUndefined();
  });

  it('parses the version sources it knows and ignores junk', () => {
    expect(parseNvidiaSmi('garbage')).toBeNull();
    expect(parseNvidiaSmi('Tesla T4, [N/A], 15360')).toBeNull();
    expect(l4tFromTegraRelease('# R35 (release), REVISION: 4.1, GCID: 33958178')).toBe('35.4.1');
    expect(jetpackFromL4t('35.4.1')).toBe('5.1.2');
    expect(jetpackFromL4t('32.7.4')).toBe('4.6.4');
    expect(jetpackFromL4t('99.1')).toBeUndefined();
    expect(cudaFromFiles(undefined, 'CUDA Version 10.2.89\n')).toBe('10.2.89');
    expect(tensorrtFromHeader('#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0')).toBe('10.3.0');
  });
});
