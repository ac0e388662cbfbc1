import { GraphBuilder } from '../onnx/graph-builder.ts';
import { float32Tensor } from '../onnx/tensor.ts';
import { SeededRandom } from '../random.ts';

/** A fully connected layer; `w` is row-major [inSize][outSize], the layout ONNX MatMul takes. */
export interface DenseLayer {
  inSize: number;
  outSize: number;
  w: Float32Array;
  b: Float32Array;
}

/** Dense layers with ReLU between them and softmax after the last. */
export interface Mlp {
  layers: DenseLayer[];
}

export function layerSizes(mlp: Mlp): number[] {
  const first = mlp.layers[0];
  if (!first) throw new RangeError('an MLP needs at least one layer');
  return [first.inSize, ...mlp.layers.map((l) => l.outSize)];
}

/** He-initialized weights (suits ReLU) with small random biases, all from `seed`. */
export function randomMlp(sizes: readonly number[], seed: number): Mlp {
  const rng = new SeededRandom(seed);
  const layers: DenseLayer[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const inSize = sizes[i] as number;
    const outSize = sizes[i + 1] as number;
    layers.push({
      inSize,
      outSize,
      w: rng.normalArray(inSize * outSize, Math.sqrt(2 / inSize)),
      b: rng.normalArray(outSize, 0.1),
    });
  }
  return { layers };
}

export function cloneMlp(mlp: Mlp): Mlp {
  return { layers: mlp.layers.map((l) => ({ ...l, w: l.w.slice(), b: l.b.slice() })) };
}

/** The input each layer saw (index 0 is the model input) and the logits, for one sample. */
export interface MlpTrace {
  layerInputs: Float32Array[];
  logits: Float32Array;
}

/** Reference forward pass in plain TypeScript: used for calibration and training, never for golden data. */
export function mlpForward(mlp: Mlp, x: Float32Array): MlpTrace {
  const layerInputs: Float32Array[] = [];
  let a = x;
  mlp.layers.forEach((layer, index) => {
    layerInputs.push(a);
    const z = layer.b.slice();
    for (let i = 0; i < layer.inSize; i++) {
      const ai = a[i] as number;
      if (ai === 0) continue;
      const row = i * layer.outSize;
      for (let j = 0; j < layer.outSize; j++) z[j] = (z[j] as number) + ai * (layer.w[row + j] as number);
    }
    if (index < mlp.layers.length - 1) for (let j = 0; j < z.length; j++) if ((z[j] as number) < 0) z[j] = 0;
    a = z;
  });
  return { layerInputs, logits: a };
}

/** Names and metadata for an MLP's graph. */
export interface MlpGraphIo {
  graphName: string;
  inputName: string;
  outputName: string;
}

/** Writes one dense layer (x @ W + b) and returns the name of its float output. */
export type DenseWriter = (g: GraphBuilder, x: string, layer: DenseLayer, index: number) => string;

/** The plain float dense layer: MatMul then Add. */
export const fp32Dense: DenseWriter = (g, x, layer, index) => {
  const w = g.constant(`dense${index}.weight`, float32Tensor([layer.inSize, layer.outSize], layer.w));
  const b = g.constant(`dense${index}.bias`, float32Tensor([layer.outSize], layer.b));
  return g.op('Add', [g.op('MatMul', [x, w]), b]);
};

/** Writes the whole MLP graph with the given dense-layer writer: input → dense/ReLU … → softmax. */
export function writeMlpGraph(mlp: Mlp, io: MlpGraphIo, dense: DenseWriter): GraphBuilder {
  const sizes = layerSizes(mlp);
  const g = new GraphBuilder(io.graphName);
  let x = g.input(io.inputName, 'float32', ['N', sizes[0] as number]);
  mlp.layers.forEach((layer, index) => {
    const y = dense(g, x, layer, index);
    x = index < mlp.layers.length - 1 ? g.op('Relu', [y]) : y;
  });
  g.op('Softmax', [x], {}, io.outputName);
  g.output(io.outputName, 'float32', ['N', sizes[sizes.length - 1] as number]);
  return g;
}
