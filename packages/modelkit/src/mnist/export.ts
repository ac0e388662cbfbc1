import { goldenTensor, shortestFloat32, toleranceFor } from '../golden.ts';
import { fp32Dense, writeMlpGraph } from '../models/mlp.ts';
import type { Mlp, MlpGraphIo } from '../models/mlp.ts';
import { calibrateMlp } from '../quantize/calibrate.ts';
import { buildMlpStaticQdq } from '../quantize/static-qdq.ts';
import { measureDisagreement, runBytes } from '../quantize/agreement.ts';
import type { FloatBatch } from '../quantize/agreement.ts';
import { withSession } from '../onnx/session.ts';
import { VERSION_GOOD } from '../build/recipe.ts';
import type { BuildContext, BuiltModel, CardBody, Recipe } from '../build/recipe.ts';
import type { EvalSet, Precision } from '../card.ts';
import { PRODUCER_VERSION } from '../producer.ts';
import { MNIST_CLASSES, MNIST_PIXELS, head, loadAllDigits, row, splitDigits } from './dataset.ts';
import type { DigitSet, MnistSplit } from './dataset.ts';
import { trainMlp } from './train.ts';
import type { TrainOptions } from './train.ts';
import { argmaxRows, classify, measureClassifier } from './evaluate.ts';

/**
 * The two MNIST classifiers: a small edge model (784 → 32 → 10, shipped as int8, plus its fp32
 * form) and a larger cloud model (784 → 128 → 64 → 10, fp32). The accuracy gap between them is
 * what makes sending hard digits to the cloud worth it.
 */
export const MNIST_SPLIT = { seed: 7, trainCount: 8000 };
export const EDGE_TRAINING: TrainOptions = { sizes: [784, 32, 10], epochs: 3, batchSize: 64, learningRate: 2e-3, seed: 11 };
export const CLOUD_TRAINING: TrainOptions = { sizes: [784, 128, 64, 10], epochs: 6, batchSize: 64, learningRate: 2e-3, seed: 12 };
const CALIBRATION_ROWS = 512;
const EVAL_SET_ROWS = 200;
const GOLDEN_ROWS = 4;
const FP32_TOLERANCE = 1e-5;
export const MNIST_IO: MlpGraphIo = { graphName: 'mnist_mlp', inputName: 'input', outputName: 'probabilities' };
export const MNIST_LABELS = Array.from({ length: MNIST_CLASSES }, (_, i) => String(i));

export const EVAL_SET_FILE = 'eval-set.json';
export const METRICS_FILE = 'metrics.json';

export function mnistSplit(ctx: BuildContext): Promise<MnistSplit> {
  return ctx.memo('mnist-split', () => splitDigits(loadAllDigits(), MNIST_SPLIT.seed, MNIST_SPLIT.trainCount));
}

function trained(ctx: BuildContext, which: 'edge' | 'cloud'): Promise<Mlp> {
  return ctx.memo(`mnist-${which}-trained`, async () => {
    const { train } = await mnistSplit(ctx);
    const started = performance.now();
    const mlp = trainMlp(train, which === 'edge' ? EDGE_TRAINING : CLOUD_TRAINING);
    ctx.log(`trained mnist-${which} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return mlp;
  });
}

function batch(set: DigitSet): FloatBatch {
  return { data: set.x, dims: [set.count, MNIST_PIXELS] };
}

/** The edge network in fp32 and static int8, from one training run. */
export async function edgeBuilds(ctx: BuildContext): Promise<{ mlp: Mlp; fp32: Uint8Array; int8: Uint8Array; calibrationRows: Float32Array[] }> {
  return ctx.memo('mnist-edge-builds', async () => {
    const mlp = await trained(ctx, 'edge');
    const { train } = await mnistSplit(ctx);
    const calibrationRows = Array.from({ length: CALIBRATION_ROWS }, (_, i) => row(train, i));
    return {
      mlp,
      calibrationRows,
      fp32: writeMlpGraph(mlp, MNIST_IO, fp32Dense).toBytes({ producerVersion: PRODUCER_VERSION }),
      int8: buildMlpStaticQdq(mlp, MNIST_IO, calibrateMlp(mlp, calibrationRows)).toBytes({ producerVersion: PRODUCER_VERSION }),
    };
  });
}

/** The card fields every MNIST build shares; golden data is filled in per build. */
export function mnistCardBody(model: string, precision: Precision, description: string, golden: CardBody['golden'], metrics: Record<string, number>): CardBody {
  return {
    model,
    version: VERSION_GOOD,
    description,
    precision,
    ...(precision === 'int8' ? { quantization: 'static-qdq' as const } : {}),
    inputs: [{ name: MNIST_IO.inputName, dtype: 'float32', shape: [-1, MNIST_PIXELS], range: [0, 1], description: '28×28 grayscale digit, row-major, 0 = background, 1 = ink' }],
    outputs: [{ name: MNIST_IO.outputName, dtype: 'float32', shape: [-1, MNIST_CLASSES], range: [0, 1] }],
    labels: MNIST_LABELS,
    golden,
    metrics,
  };
}

/** Golden data for the first test digits with the given reference outputs. */
async function goldenFor(ctx: BuildContext, reference: Uint8Array, tolerance: number): Promise<CardBody['golden']> {
  const { test } = await mnistSplit(ctx);
  const rows = head(test, GOLDEN_ROWS);
  const output = await runBytes(reference, MNIST_IO, batch(rows));
  return {
    inputs: { [MNIST_IO.inputName]: goldenTensor([rows.count, MNIST_PIXELS], rows.x) },
    outputs: { [MNIST_IO.outputName]: goldenTensor([rows.count, MNIST_CLASSES], output) },
    tolerance,
  };
}

/** The golden data of the shipped edge build; the bad builds reuse it unchanged. */
export async function edgeInt8Golden(ctx: BuildContext): Promise<CardBody['golden']> {
  return ctx.memo('mnist-edge-int8-golden', async () => {
    const { fp32, int8 } = await edgeBuilds(ctx);
    const { test } = await mnistSplit(ctx);
    // The tolerance is what the int8 build really meets against fp32 on the golden digits and the evaluation set.
    const diff = await measureDisagreement(fp32, int8, MNIST_IO, [batch(head(test, Math.max(GOLDEN_ROWS, EVAL_SET_ROWS)))]);
    return goldenFor(ctx, fp32, toleranceFor(diff));
  });
}

async function extraFiles(ctx: BuildContext, name: string, training: TrainOptions, metrics: Record<string, number>): Promise<NonNullable<BuiltModel['extraFiles']>> {
  const { test } = await mnistSplit(ctx);
  const evalRows = head(test, EVAL_SET_ROWS);
  const evalSet: EvalSet = {
    input: MNIST_IO.inputName,
    shape: [evalRows.count, MNIST_PIXELS],
    labels: Array.from(evalRows.y),
    data: Array.from({ length: evalRows.count }, (_, i) => Array.from(row(evalRows, i), shortestFloat32)),
  };
  return {
    evalSet: { file: EVAL_SET_FILE, content: evalSet },
    metrics: {
      file: METRICS_FILE,
      content: { build: name, measuredWith: 'onnxruntime-node', split: { ...MNIST_SPLIT, testCount: test.count }, training, metrics },
    },
  };
}

async function measure(ctx: BuildContext, onnx: Uint8Array): Promise<Record<string, number>> {
  const { test } = await mnistSplit(ctx);
  return { ...(await withSession(onnx, (s) => measureClassifier(s, test))) };
}

async function agreement(ctx: BuildContext, a: Uint8Array, b: Uint8Array): Promise<number> {
  const { test } = await mnistSplit(ctx);
  const [pa, pb] = await Promise.all([a, b].map((bytes) => withSession(bytes, (s) => classify(s, test))));
  const la = argmaxRows(pa as Float32Array);
  const lb = argmaxRows(pb as Float32Array);
  return la.filter((p, i) => p.label === lb[i]?.label).length / la.length;
}

export const mnistRecipes: Recipe[] = [
  {
    name: 'mnist-edge-int8',
    params: { split: MNIST_SPLIT, training: EDGE_TRAINING, calibrationRows: CALIBRATION_ROWS, evalSetRows: EVAL_SET_ROWS, goldenRows: GOLDEN_ROWS },
    async build(ctx) {
      const { fp32, int8 } = await edgeBuilds(ctx);
      const metrics = { ...(await measure(ctx, int8)), fp32ReferenceAccuracy: (await measure(ctx, fp32)).testAccuracy as number, top1AgreementWithFp32: await agreement(ctx, fp32, int8) };
      return {
        onnx: int8,
        card: mnistCardBody('mnist-edge', 'int8', 'MNIST edge classifier (784 → 32 → 10 MLP), static int8 QDQ calibrated on 512 training digits; golden outputs are the fp32 build\'s', await edgeInt8Golden(ctx), metrics),
        extraFiles: await extraFiles(ctx, 'mnist-edge-int8', EDGE_TRAINING, metrics),
      };
    },
  },
  {
    name: 'mnist-edge-fp32',
    params: { split: MNIST_SPLIT, training: EDGE_TRAINING, evalSetRows: EVAL_SET_ROWS, goldenRows: GOLDEN_ROWS, tolerance: FP32_TOLERANCE },
    async build(ctx) {
      const { fp32 } = await edgeBuilds(ctx);
      const metrics = await measure(ctx, fp32);
      return {
        onnx: fp32,
        card: mnistCardBody('mnist-edge', 'fp32', 'MNIST edge classifier (784 → 32 → 10 MLP), fp32', await goldenFor(ctx, fp32, FP32_TOLERANCE), metrics),
        extraFiles: await extraFiles(ctx, 'mnist-edge-fp32', EDGE_TRAINING, metrics),
      };
    },
  },
  {
    name: 'mnist-cloud-fp32',
    params: { split: MNIST_SPLIT, training: CLOUD_TRAINING, evalSetRows: EVAL_SET_ROWS, goldenRows: GOLDEN_ROWS, tolerance: FP32_TOLERANCE },
    async build(ctx) {
      const fp32 = writeMlpGraph(await trained(ctx, 'cloud'), MNIST_IO, fp32Dense).toBytes({ producerVersion: PRODUCER_VERSION });
      const metrics = await measure(ctx, fp32);
      return {
        onnx: fp32,
        card: mnistCardBody('mnist-cloud', 'fp32', 'MNIST cloud classifier (784 → 128 → 64 → 10 MLP), fp32', await goldenFor(ctx, fp32, FP32_TOLERANCE), metrics),
        extraFiles: await extraFiles(ctx, 'mnist-cloud-fp32', CLOUD_TRAINING, metrics),
      };
    },
  },
];
