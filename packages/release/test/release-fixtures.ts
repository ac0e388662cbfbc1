import { createHash, randomBytes } from 'node:crypto';
import type { Inventory } from '@flotilla/protocol';
import { generateSigningKeyPair, type ReleaseManifest, type SigningKeyPair } from '../src/index.ts';

export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
export const DAY = 24 * 60 * 60 * 1000;

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface ReleaseFixture {
  manifest: ReleaseManifest;
  /** The real bytes of each variant's file, by variant id. */
  files: Map<string, Buffer>;
}

/** A release of the `digits` model with one variant per kind of target, and real file bytes. */
export function makeRelease(overrides: Partial<Omit<ReleaseManifest, 'variants'>> = {}): ReleaseFixture {
  const files = new Map<string, Buffer>();
  const file = (id: string, name: string, size: number) => {
    const bytes = randomBytes(size);
    files.set(id, bytes);
    return { name, sha256: sha256(bytes), length: bytes.length };
  };
  const manifest: ReleaseManifest = {
    schema: 1,
    model: 'digits',
    version: '1.2.0',
    releaseCounter: 5,
    issuedAt: T0,
    expiresAt: T0 + 30 * DAY,
    variants: [
      {
        id: 'orin-trt-fp16',
        file: file('orin-trt-fp16', 'digits-orin.plan', 3000),
        format: 'tensorrt-plan',
        precision: 'fp16',
        constraints: { arch: ['arm64'], computeCapability: '8.7', tensorrtVersion: '8.6', jetpackVersion: '6' },
      },
      {
        id: 'a100-trt-fp16',
        file: file('a100-trt-fp16', 'digits-a100.plan', 2500),
        format: 'tensorrt-plan',
        precision: 'fp16',
        constraints: { arch: ['x64'], computeCapability: '8.0', tensorrtVersion: '10.3' },
      },
      {
        id: 'gpu-fp16',
        file: file('gpu-fp16', 'digits-fp16.onnx', 2000),
        format: 'onnx',
        precision: 'fp16',
        constraints: { minComputeCapability: '7.0' },
      },
      {
        id: 'cpu-int8',
        file: file('cpu-int8', 'digits-int8.onnx', 1000),
        format: 'onnx',
        precision: 'int8',
        constraints: { executionProvider: 'cpu' },
      },
      {
        id: 'cpu-fp32',
        file: file('cpu-fp32', 'digits-fp32.onnx', 4000),
        format: 'onnx',
        precision: 'fp32',
        constraints: { executionProvider: 'cpu' },
      },
    ],
    ...overrides,
  };
  return { manifest, files };
}

const baseInventory = {
  os: { platform: 'linux', release: '5.15.0' },
  cpu: { model: 'test cpu', cores: 8 },
  memoryBytes: 16 * 2 ** 30,
  disk: { path: '/var/lib/flotilla', totalBytes: 64 * 2 ** 30, freeBytes: 32 * 2 ** 30 },
  agentVersion: '0.1.0',
};

export const jetsonOrin: Inventory = {
  ...baseInventory,
  arch: 'arm64',
  gpu: { name: 'Orin', computeCapability: '8.7' },
  cudaVersion: '12.2',
  tensorrtVersion: '8.6.2',
  jetpackVersion: '6.0',
  executionProviders: ['tensorrt', 'cuda', 'cpu'],
};

export const x86Cuda: Inventory = {
  ...baseInventory,
  arch: 'x64',
  gpu: { name: 'NVIDIA RTX A4000', computeCapability: '8.6' },
  cudaVersion: '12.4',
  executionProviders: ['cuda', 'cpu'],
};

export const armCpuOnly: Inventory = {
  ...baseInventory,
  arch: 'arm64',
  gpu: null,
  executionProviders: ['cpu'],
};

export function keys(): { server: SigningKeyPair; admin: SigningKeyPair; stranger: SigningKeyPair } {
  return { server: generateSigningKeyPair(), admin: generateSigningKeyPair(), stranger: generateSigningKeyPair() };
}

/** Flips one bit of a base64 signature while keeping it valid base64 of 64 bytes. */
export function flipSignatureBit(sig: string): string {
  const bytes = Buffer.from(sig, 'base64');
  bytes[10] = bytes[10]! ^ 0x01;
  return bytes.toString('base64');
}
