import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { buildModels, corruptModelBytes, modelPath, type ModelCard } from '@flotilla/modelkit';
import { FlotillaError } from '@flotilla/protocol';
import { InferenceService, type Tensor } from '@flotilla/agent/inference';
import { BUILD_DIR } from '../../helpers/ota-registry.ts';
import { FuzzProbe, checkTarget, type RunOptions, type TargetReport } from '../harness/fuzz-report.ts';

/** The clean refusals of the agent's load path: the file does not load, or loads and fails its golden self-test. */
export const LOAD_REFUSALS = new Set(['FLT_INFER_LOAD_FAILED', 'FLT_INFER_SELFTEST_FAILED']);

const SOURCES = ['mnist-edge-int8', 'mnist-edge-fp32', 'tiny-mlp-fp32'] as const;

type Damage =
  | { kind: 'truncate'; fraction: number }
  | { kind: 'garble' }
  | { kind: 'bit-flips'; flips: Array<{ at: number; bit: number }> }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'splice'; other: number; at: number }
  | { kind: 'random-bytes'; bytes: Uint8Array };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('truncate' as const), fraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'garble' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('bit-flips' as const), flips: fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), other: fc.nat(), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random-bytes' as const), bytes: fc.uint8Array({ maxLength: 4096 }) }) },
);

function damaged(bytes: Buffer, d: Damage, others: readonly Buffer[]): Buffer {
  switch (d.kind) {
    case 'truncate':
      return Buffer.from(corruptModelBytes(bytes, 'truncate', d.fraction));
    case 'garble':
      return Buffer.from(corruptModelBytes(bytes, 'garble'));
    case 'bit-flips': {
      const out = Buffer.from(bytes);
      for (const f of d.flips) out[f.at % out.length] = out[f.at % out.length]! ^ (1 << f.bit);
      return out;
    }
    case 'overwrite': {
      const out = Buffer.from(bytes);
      out.set(d.bytes.subarray(0, Math.max(0, out.length - (d.at % out.length))), d.at % out.length);
      return out;
    }
    case 'splice': {
      const other = others[d.other % others.length]!;
      const cut = d.at % bytes.length;
      return Buffer.concat([bytes.subarray(0, cut), other.subarray(cut % other.length)]);
    }
    case 'random-bytes':
      return Buffer.from(d.bytes);
  }
}

/**
 * Damaged copies of real model kit builds (truncated, garbled, bit-flipped, overwritten, spliced,
 * or pure noise), loaded through the agent's staging path: load in a worker thread, warm up, golden
 * self-test (InferenceService.stage, what an OTA install runs). Each must be refused with
 * FLT_INFER_LOAD_FAILED or FLT_INFER_SELFTEST_FAILED, or load and pass its self-test (damage that
 * missed everything that matters); and the model already serving must keep answering.
 */
export async function fuzzOnnxLoad(opts: RunOptions): Promise<TargetReport> {
  const probe = new FuzzProbe();
  const cards = new Map<string, ModelCard>((await buildModels(BUILD_DIR, { only: [...SOURCES] })).map((c) => [c.name, c]));
  const sources = SOURCES.map((name) => ({ card: cards.get(name)!, bytes: readFileSync(modelPath(BUILD_DIR, name)) }));
  const dir = mkdtempSync(join(tmpdir(), 'flt-fuzz-onnx-'));
  const service = new InferenceService({ warmupRuns: 1 });
  const serving = sources[0]!;
  try {
    await service.load({ model: 'serving', version: '1', path: modelPath(BUILD_DIR, serving.card.name), format: 'onnx', providers: ['cpu'] }, { golden: serving.card.golden });
    const servingInputs = (): Tensor[] =>
      Object.entries(serving.card.golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32', shape: [...t.shape], data: Float32Array.from(t.data) }));
    let n = 0;
    const property = fc.asyncProperty(fc.nat({ max: sources.length - 1 }), damage, async (which, d) => {
      const source = sources[which]!;
      const bytes = damaged(source.bytes, d, sources.map((s) => s.bytes));
      const path = join(dir, `candidate-${n}.onnx`);
      writeFileSync(path, bytes);
      const version = String(++n);
      try {
        await service.stage({ model: 'candidate', version, path, format: 'onnx', providers: ['cpu'] }, { golden: source.card.golden });
        probe.tally(`${d.kind}:loaded-and-passed`);
        await service.unload('candidate', version);
      } catch (err) {
        if (!(err instanceof FlotillaError)) throw new Error(`untyped load failure: ${(err as Error)?.stack ?? String(err)}`);
        if (!LOAD_REFUSALS.has(err.code)) throw new Error(`unexpected code ${err.code}: ${err.message}`);
        probe.tally(`${d.kind}:${err.code}`);
      } finally {
        rmSync(path, { force: true });
      }
      // Nothing of the candidate is left staged, and the serving model still answers.
      const status = service.status().find((m) => m.model === 'candidate');
      if (status && (status.staged || status.active)) throw new Error(`candidate ${version} left loaded`);
      const answer = await service.infer('serving', servingInputs());
      if (answer.version !== '1') throw new Error('the serving model changed');
      return probe.assertClean();
    });
    return await checkTarget('onnx-load', probe, property, { ...opts, endOnFailure: opts.endOnFailure ?? true });
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
