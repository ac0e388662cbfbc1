import { readFile, writeFile } from 'node:fs/promises';
import { SeededRandom } from './random.ts';
import { cloneMlp, writeMlpGraph } from './models/mlp.ts';
import type { DenseWriter, Mlp } from './models/mlp.ts';
import { calibrateMlp } from './quantize/calibrate.ts';
import { buildMlpStaticQdq, staticQdqDense } from './quantize/static-qdq.ts';
import { openSession, withSession } from './onnx/session.ts';
import { runGoldenSelfTest } from './golden.ts';
import { VERSION_BAD } from './build/recipe.ts';
import type { Recipe } from './build/recipe.ts';
import { PRODUCER_VERSION } from './producer.ts';
import { EDGE_TRAINING, MNIST_IO, edgeBuilds, edgeInt8Golden, mnistCardBody } from './mnist/export.ts';

/**
 * Deliberately broken releases of the MNIST edge model, for rollback tests. Both carry the good
 * build's signature and golden data, as a broken release would; the build checks that each is
 * really broken in the intended way and fails otherwise.
 */
const PERTURBATION = { seed: 99, relativeStd: 0.5 };
/** A tensor no node produces and the graph never declares: onnxruntime refuses the graph at load. */
export const UNDEFINED_TENSOR = 'logit_offset';

/** Adds seeded noise to every weight, scaled to each layer's own weight spread. */
export function perturbMlp(mlp: Mlp, seed: number, relativeStd: number): Mlp {
  const rng = new SeededRandom(seed);
  const out = cloneMlp(mlp);
  for (const layer of out.layers) {
    let sq = 0;
    for (const v of layer.w) sq += v * v;
    const std = Math.sqrt(sq / layer.w.length) * relativeStd;
    for (let i = 0; i < layer.w.length; i++) layer.w[i] = (layer.w[i] as number) + rng.normal() * std;
  }
  return out;
}

export const badBuildRecipes: Recipe[] = [
  {
    name: 'mnist-edge-int8-bad-golden',
    params: { base: 'mnist-edge-int8', training: EDGE_TRAINING, perturbation: PERTURBATION },
    async build(ctx) {
      const { mlp, calibrationRows } = await edgeBuilds(ctx);
      const bad = perturbMlp(mlp, PERTURBATION.seed, PERTURBATION.relativeStd);
      const onnx = buildMlpStaticQdq(bad, MNIST_IO, calibrateMlp(bad, calibrationRows)).toBytes({ producerVersion: PRODUCER_VERSION });
      const golden = await edgeInt8Golden(ctx);
      const result = await withSession(onnx, (s) => runGoldenSelfTest(s, golden));
      if (result.pass) throw new Error(`mnist-edge-int8-bad-golden passes its golden self-test (max abs diff ${result.maxAbsDiff}); raise the perturbation`);
      const card = mnistCardBody('mnist-edge', 'int8', 'Broken release of mnist-edge: loads and runs, but its weights are perturbed, so it fails the golden self-test it ships with', golden, { goldenMaxAbsDiff: result.maxAbsDiff });
      return { onnx, card: { ...card, version: VERSION_BAD, fault: 'golden-mismatch' } };
    },
  },
  {
    name: 'mnist-edge-int8-unloadable',
    params: { base: 'mnist-edge-int8', training: EDGE_TRAINING, undefinedTensor: UNDEFINED_TENSOR },
    async build(ctx) {
      const { mlp, calibrationRows } = await edgeBuilds(ctx);
      const qdq = staticQdqDense(calibrateMlp(mlp, calibrationRows));
      const last = mlp.layers.length - 1;
      // Same graph as the good build, except the logits pass through an Add with a tensor that does not exist.
      const dense: DenseWriter = (g, x, layer, index) => {
        const y = qdq(g, x, layer, index);
        return index === last ? g.op('Add', [y, UNDEFINED_TENSOR]) : y;
      };
      const onnx = writeMlpGraph(mlp, MNIST_IO, dense).toBytes({ producerVersion: PRODUCER_VERSION });
      const loaded = await openSession(onnx).then(
        async (s) => {
          await s.release();
          return true;
        },
        () => false,
      );
      if (loaded) throw new Error('mnist-edge-int8-unloadable loads; it must not');
      const card = mnistCardBody('mnist-edge', 'int8', `Broken release of mnist-edge: a well-formed ONNX file whose graph reads an undefined tensor (${UNDEFINED_TENSOR}), so onnxruntime refuses to load it`, await edgeInt8Golden(ctx), {});
      return { onnx, card: { ...card, version: VERSION_BAD, fault: 'unloadable' } };
    },
  },
];

/**
 * A damaged copy of model bytes, as an interrupted download or a bad disk would leave it:
 * `truncate` keeps the first `fraction` of the bytes; `garble` overwrites the middle third with
 * seeded noise (same length: it may still load, and only the sha256 or the golden self-test
 * catches it).
 */
export function corruptModelBytes(bytes: Uint8Array, mode: 'truncate' | 'garble' = 'truncate', fraction = 0.5): Uint8Array {
  if (mode === 'truncate') return bytes.slice(0, Math.floor(bytes.length * fraction));
  const out = bytes.slice();
  const rng = new SeededRandom(bytes.length);
  const start = Math.floor(out.length / 3);
  for (let i = start; i < 2 * start; i++) out[i] = rng.int(256);
  return out;
}

/** Writes a damaged copy of a model file to `dest`. */
export async function writeCorruptedModel(src: string, dest: string, mode: 'truncate' | 'garble' = 'truncate', fraction = 0.5): Promise<void> {
  await writeFile(dest, corruptModelBytes(await readFile(src), mode, fraction));
}
