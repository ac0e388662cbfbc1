import { GraphBuilder, intsAttr } from '../onnx/graph-builder.ts';
import { float32Tensor } from '../onnx/tensor.ts';
import { SeededRandom } from '../random.ts';
import { goldenTensor } from '../golden.ts';
import { runBytes } from '../quantize/agreement.ts';
import { VERSION_GOOD } from '../build/recipe.ts';
import type { Recipe } from '../build/recipe.ts';
import { PRODUCER_VERSION } from '../producer.ts';

/**
 * A compute-heavy model for benchmarks: a stack of 3×3 convolutions over a 64×64 image, then
 * global pooling and a 10-way softmax. Convolutions give many multiply-adds per byte of weights,
 * so a run costs milliseconds of CPU while the file stays a few hundred kilobytes.
 */
const PARAMS = { inChannels: 3, size: 64, channels: 64, blocks: 6, classes: 10, seed: 4242 };
const IO = { inputName: 'input', outputName: 'probabilities' };
const TOLERANCE = 1e-4;

export function buildHeavyConv(p = PARAMS): Uint8Array {
  const rng = new SeededRandom(p.seed);
  const g = new GraphBuilder('heavy_conv');
  let x = g.input(IO.inputName, 'float32', ['N', p.inChannels, p.size, p.size]);
  let cin = p.inChannels;
  for (let i = 0; i <= p.blocks; i++) {
    // He init keeps activations at a steady scale through the ReLU stack.
    const w = g.constant(`conv${i}.weight`, float32Tensor([p.channels, cin, 3, 3], rng.normalArray(p.channels * cin * 9, Math.sqrt(2 / (cin * 9)))));
    const b = g.constant(`conv${i}.bias`, float32Tensor([p.channels], rng.normalArray(p.channels, 0.01)));
    x = g.op('Relu', [g.op('Conv', [x, w, b], { kernel_shape: intsAttr([3, 3]), pads: intsAttr([1, 1, 1, 1]) })]);
    cin = p.channels;
  }
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])]);
  const fw = g.constant('head.weight', float32Tensor([p.channels, p.classes], rng.normalArray(p.channels * p.classes, Math.sqrt(2 / p.channels))));
  const fb = g.constant('head.bias', float32Tensor([p.classes], new Float32Array(p.classes)));
  g.op('Softmax', [g.op('Add', [g.op('MatMul', [pooled, fw]), fb])], {}, IO.outputName);
  g.output(IO.outputName, 'float32', ['N', p.classes]);
  return g.toBytes({ producerVersion: PRODUCER_VERSION });
}

export const heavyRecipe: Recipe = {
  name: 'heavy-conv-fp32',
  params: { ...PARAMS, tolerance: TOLERANCE },
  async build() {
    const onnx = buildHeavyConv();
    const dims = [1, PARAMS.inChannels, PARAMS.size, PARAMS.size];
    const rng = new SeededRandom(PARAMS.seed + 1);
    // Two-decimal pixel values keep the golden data in model.json short.
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).map(() => rng.int(101) / 100);
    const output = await runBytes(onnx, IO, { data, dims });
    return {
      onnx,
      card: {
        model: 'heavy-conv',
        version: VERSION_GOOD,
        description: `Benchmark load: ${PARAMS.blocks + 1} 3×3 convolutions (${PARAMS.channels} channels) over a ${PARAMS.size}×${PARAMS.size} image, seeded random weights, fp32`,
        precision: 'fp32',
        inputs: [{ name: IO.inputName, dtype: 'float32', shape: [-1, PARAMS.inChannels, PARAMS.size, PARAMS.size], range: [0, 1] }],
        outputs: [{ name: IO.outputName, dtype: 'float32', shape: [-1, PARAMS.classes], range: [0, 1] }],
        labels: null,
        golden: { inputs: { [IO.inputName]: goldenTensor(dims, data) }, outputs: { [IO.outputName]: goldenTensor([1, PARAMS.classes], output) }, tolerance: TOLERANCE },
        metrics: {},
      },
    };
  },
};
