import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { assertVariantCompatible, matchConstraints, resolveVariant, versionMatches, type ReleaseVariant } from '../src/index.ts';
import { armCpuOnly, jetsonOrin, makeRelease, x86Cuda } from './release-fixtures.ts';

const { manifest } = makeRelease();
const variant = (id: string): ReleaseVariant => manifest.variants.find((v) => v.id === id)!;

describe('resolveVariant', () => {
  it('gives a Jetson Orin the TensorRT plan built for compute capability 8.7 and TensorRT 8.6', () => {
    const result = resolveVariant(manifest, jetsonOrin);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.variant.id).toBe('orin-trt-fp16');
    expect(result.provider).toBe('tensorrt');
    expect(result.explanation.ranking).toEqual(['orin-trt-fp16', 'gpu-fp16', 'cpu-int8', 'cpu-fp32']);
    const a100 = result.explanation.candidates.find((c) => c.id === 'a100-trt-fp16')!;
    expect(a100.accepted).toBe(false);
    expect(a100.reasons).toEqual([
      'arch arm64 is not one of x64',
      'built for compute capability 8.0, device GPU is 8.7',
      'built for TensorRT 10.3, device has 8.6.2',
    ]);
    expect(result.explanation.why).toMatch(/^orin-trt-fp16 chosen: tensorrt-plan/);
    expect(result.explanation.why).toContain('gpu-fp16: onnx fp16 on a GPU provider ranks lower');
  });

  it('gives an x86 box with CUDA the fp16 ONNX on cuda and says why no plan fits', () => {
    const result = resolveVariant(manifest, x86Cuda);
    if (!result.ok) throw new Error('expected a variant');
    expect(result.variant.id).toBe('gpu-fp16');
    expect(result.provider).toBe('cuda');
    const orin = result.explanation.candidates.find((c) => c.id === 'orin-trt-fp16')!;
    expect(orin.reasons).toEqual([
      'arch x64 is not one of arm64',
      'built for compute capability 8.7, device GPU is 8.6',
      'built for TensorRT 8.6, device reports no TensorRT',
      'built for JetPack 6, device reports no JetPack',
      'a TensorRT plan needs the tensorrt or triton provider (device has cuda, cpu)',
    ]);
  });

  it('gives a CPU-only arm64 box the int8 ONNX and rejects everything that needs a GPU', () => {
    const result = resolveVariant(manifest, armCpuOnly);
    if (!result.ok) throw new Error('expected a variant');
    expect(result.variant.id).toBe('cpu-int8');
    expect(result.provider).toBe('cpu');
    expect(result.explanation.ranking).toEqual(['cpu-int8', 'cpu-fp32']);
    expect(result.explanation.candidates.find((c) => c.id === 'gpu-fp16')!.reasons).toEqual([
      'needs a GPU with compute capability >= 7.0, device has no GPU',
    ]);
  });

  it('prefers fp32 over fp16 on a CPU-only box when no int8 exists', () => {
    const variants = manifest.variants.filter((v) => v.format === 'onnx' && v.precision !== 'int8').map((v) => ({ ...v, constraints: {} }));
    const result = resolveVariant(variants, armCpuOnly);
    if (!result.ok) throw new Error('expected a variant');
    expect(result.variant.id).toBe('cpu-fp32');
    expect(result.explanation.ranking).toEqual(['cpu-fp32', 'gpu-fp16']);
  });

  it('answers FLT_OTA_INCOMPATIBLE with every rejection when nothing fits', () => {
    const gpuOnly = manifest.variants.filter((v) => v.id === 'gpu-fp16' || v.format === 'tensorrt-plan');
    const result = resolveVariant(gpuOnly, armCpuOnly);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('FLT_OTA_INCOMPATIBLE');
    expect(result.explanation.winner).toBeNull();
    expect(result.explanation.candidates.every((c) => !c.accepted && c.reasons.length > 0)).toBe(true);
    expect(result.explanation.why).toContain('gpu-fp16 (needs a GPU');
  });

  it('gives the same answer whatever order the variants are listed in', () => {
    const twins = [
      ...manifest.variants,
      { ...variant('cpu-int8'), id: 'cpu-int8-b' },
      { ...variant('cpu-int8'), id: 'cpu-int8-a', constraints: { executionProvider: 'cpu' as const, arch: ['arm64', 'x64'] } },
    ];
    for (const inventory of [jetsonOrin, x86Cuda, armCpuOnly]) {
      const reference = resolveVariant(twins, inventory);
      fc.assert(
        fc.property(fc.shuffledSubarray(twins, { minLength: twins.length }), (shuffled) => {
          const result = resolveVariant(shuffled, inventory);
          expect(result.explanation.ranking).toEqual(reference.explanation.ranking);
        }),
        { numRuns: 50 },
      );
    }
    const cpu = resolveVariant(twins, armCpuOnly);
    // Among equal int8 CPU builds the one aimed more narrowly wins, then the lower id.
    expect(cpu.explanation.ranking.slice(0, 3)).toEqual(['cpu-int8-a', 'cpu-int8', 'cpu-int8-b']);
  });
});

describe('hardware matching', () => {
  it('refuses a variant built for other hardware (FLT_OTA_INCOMPATIBLE)', () => {
    let caught: unknown;
    try {
      assertVariantCompatible(variant('orin-trt-fp16'), x86Cuda);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlotillaError);
    expect((caught as FlotillaError).code).toBe('FLT_OTA_INCOMPATIBLE');
    expect(((caught as FlotillaError).details as { reasons: string[] }).reasons.length).toBe(5);
    expect(assertVariantCompatible(variant('orin-trt-fp16'), jetsonOrin)).toBe('tensorrt');
  });

  it('treats arch spellings from node, uname and Debian as the same', () => {
    expect(matchConstraints({ arch: ['aarch64'] }, jetsonOrin)).toEqual({ ok: true });
    expect(matchConstraints({ arch: ['amd64'] }, { ...x86Cuda, arch: 'x86_64' })).toEqual({ ok: true });
    expect(matchConstraints({ arch: ['arm64'] }, x86Cuda).ok).toBe(false);
  });

  it('requires the exact compute capability for plans and a minimum for minComputeCapability', () => {
    expect(matchConstraints({ computeCapability: '8.7' }, jetsonOrin)).toEqual({ ok: true });
    expect(matchConstraints({ computeCapability: '8.6' }, jetsonOrin).ok).toBe(false);
    expect(matchConstraints({ minComputeCapability: '8.7' }, jetsonOrin)).toEqual({ ok: true });
    expect(matchConstraints({ minComputeCapability: '9.0' }, jetsonOrin)).toEqual({ ok: false, reasons: ['needs compute capability >= 9.0, device GPU is 8.7'] });
  });

  it('matches a version constraint as a prefix of the device version', () => {
    expect(versionMatches('8.6', '8.6.2.3')).toBe(true);
    expect(versionMatches('8.6', '8.60')).toBe(false);
    expect(versionMatches('8.6.1', '8.6')).toBe(false);
    expect(versionMatches('6', '6.0')).toBe(true);
    expect(versionMatches('6', '5.1.2')).toBe(false);
    expect(versionMatches('6', undefined)).toBe(false);
  });

  it('refuses a provider the device cannot load', () => {
    expect(matchConstraints({ executionProvider: 'tensorrt' }, x86Cuda)).toEqual({
      ok: false,
      reasons: ['execution provider tensorrt is not available (device has cuda, cpu)'],
    });
    expect(matchConstraints({ executionProvider: 'cpu' }, { ...armCpuOnly, executionProviders: [] })).toEqual({ ok: true });
  });
});
