import { SeededRandom } from '../random.ts';
import { goldenTensor } from '../golden.ts';
import { fp32Dense, randomMlp, writeMlpGraph, type MlpGraphIo } from './mlp.ts';
import { runBytes } from '../quantize/agreement.ts';
import { VERSION_GOOD } from '../build/recipe.ts';
import type { Recipe } from '../build/recipe.ts';
import { PRODUCER_VERSION } from '../producer.ts';

/**
 * The GPU-pool-sized cloud model for batching benchmarks: a wide fp32 MLP on MNIST-shaped input
 * (784 → 2048 → 2048 → 2048 → 10). Its ~10 M weights (40 MB) are streamed from memory once per
 * session run, so a batch-1 run is a chain of memory-bound matrix-vector products (1–3 ms on one
 * core of the development machine), while a batch of 32 reuses every weight 32 times in one GEMM:
 * the regime where dynamic batching pays, as it does for large models on a GPU pool. Weights are seeded pseudo-random (He init):
 * training a model this size would take minutes for a figure that measures throughput, not
 * accuracy, so its outputs are well-formed probabilities but not digit predictions.
 */
const PARAMS = { sizes: [784, 2048, 2048, 2048, 10], seed: 7717, goldenRows: 2 };
const IO: MlpGraphIo = { graphName: 'wide_mlp', inputName: 'input', outputName: 'probabilities' };
const TOLERANCE = 1e-4;

export function buildWideMlp(p = PARAMS): Uint8Array {
  return writeMlpGraph(randomMlp(p.sizes, p.seed), IO, fp32Dense).toBytes({ producerVersion: PRODUCER_VERSION });
}

export const wideMlpRecipe: Recipe = {
  name: 'wide-mlp-fp32',
  params: { ...PARAMS, tolerance: TOLERANCE },
  async build() {
    const onnx = buildWideMlp();
    const width = PARAMS.sizes[0] as number;
    const classes = PARAMS.sizes.at(-1) as number;
    const rng = new SeededRandom(PARAMS.seed + 1);
    const dims = [PARAMS.goldenRows, width];
    // Two-decimal pixel values in [0, 1], like a scaled MNIST digit, keep model.json short.
    const data = new Float32Array(PARAMS.goldenRows * width).map(() => rng.int(101) / 100);
    const output = await runBytes(onnx, IO, { data, dims });
    return {
      onnx,
      card: {
        model: 'wide-mlp',
        version: VERSION_GOOD,
        description: `Batching benchmark load: fp32 MLP ${PARAMS.sizes.join('→')} on MNIST-shaped input, seeded random weights (not trained)`,
        precision: 'fp32',
        inputs: [{ name: IO.inputName, dtype: 'float32', shape: [-1, width], range: [0, 1] }],
        outputs: [{ name: IO.outputName, dtype: 'float32', shape: [-1, classes], range: [0, 1] }],
        labels: null,
        golden: { inputs: { [IO.inputName]: goldenTensor(dims, data) }, outputs: { [IO.outputName]: goldenTensor([PARAMS.goldenRows, classes], output) }, tolerance: TOLERANCE },
        metrics: {},
      },
    };
  },
};
