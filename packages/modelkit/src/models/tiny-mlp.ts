import { SeededRandom } from '../random.ts';
import { goldenTensor, toleranceFor } from '../golden.ts';
import { randomMlp, writeMlpGraph, fp32Dense, layerSizes } from '../models/mlp.ts';
import type { Mlp, MlpGraphIo } from '../models/mlp.ts';
import { calibrateMlp } from '../quantize/calibrate.ts';
import { buildMlpStaticQdq } from '../quantize/static-qdq.ts';
import { buildMlpDynamic } from '../quantize/dynamic.ts';
import { measureDisagreement, runBytes } from '../quantize/agreement.ts';
import type { FloatBatch } from '../quantize/agreement.ts';
import { VERSION_GOOD } from '../build/recipe.ts';
import type { BuildContext, BuiltModel, Recipe } from '../build/recipe.ts';
import type { Precision, Quantization, TensorSignature } from '../card.ts';
import { PRODUCER_VERSION } from '../producer.ts';

/**
 * A small synthetic classifier (16 features → 32 → 5 classes) with seeded random weights, in fp32
 * and two int8 forms. Small enough to load in milliseconds; used wherever a test needs a real model
 * rather than a meaningful one.
 */
const PARAMS = { sizes: [16, 32, 5], seed: 1301, calibrationRows: 256, checkRows: 256, goldenRows: 4 };
const IO: MlpGraphIo = { graphName: 'tiny_mlp', inputName: 'input', outputName: 'probabilities' };
const FP32_TOLERANCE = 1e-5;

interface TinyMlpParts {
  mlp: Mlp;
  fp32: Uint8Array;
  calibration: Float32Array[];
  check: FloatBatch;
  golden: FloatBatch;
  goldenOutput: Float32Array;
}

/** Inputs are standard normals clipped to ±INPUT_LIMIT: the range the card promises, which calibration then covers. */
const INPUT_LIMIT = 3;

function gaussianRows(seed: number, rows: number, width: number): Float32Array[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: rows }, () => rng.normalArray(width).map((v) => Math.max(-INPUT_LIMIT, Math.min(INPUT_LIMIT, v))));
}

function batchOf(rows: readonly Float32Array[], width: number): FloatBatch {
  const data = new Float32Array(rows.length * width);
  rows.forEach((r, i) => data.set(r, i * width));
  return { data, dims: [rows.length, width] };
}

async function tinyParts(ctx: BuildContext): Promise<TinyMlpParts> {
  return ctx.memo('tiny-mlp', async () => {
    const mlp = randomMlp(PARAMS.sizes, PARAMS.seed);
    const width = PARAMS.sizes[0] as number;
    const fp32 = writeMlpGraph(mlp, IO, fp32Dense).toBytes({ producerVersion: PRODUCER_VERSION });
    const golden = batchOf(gaussianRows(PARAMS.seed + 3, PARAMS.goldenRows, width), width);
    return {
      mlp,
      fp32,
      calibration: gaussianRows(PARAMS.seed + 1, PARAMS.calibrationRows, width),
      check: batchOf(gaussianRows(PARAMS.seed + 2, PARAMS.checkRows, width), width),
      golden,
      goldenOutput: await runBytes(fp32, IO, golden),
    };
  });
}

function signatures(mlp: Mlp): { inputs: TensorSignature[]; outputs: TensorSignature[]; labels: string[] } {
  const sizes = layerSizes(mlp);
  const classes = sizes[sizes.length - 1] as number;
  return {
    inputs: [{ name: IO.inputName, dtype: 'float32', shape: [-1, sizes[0] as number], range: [-INPUT_LIMIT, INPUT_LIMIT], description: 'standard-normal features clipped to the range' }],
    outputs: [{ name: IO.outputName, dtype: 'float32', shape: [-1, classes], range: [0, 1] }],
    labels: Array.from({ length: classes }, (_, i) => `class-${i}`),
  };
}

function card(parts: TinyMlpParts, precision: Precision, description: string, tolerance: number, metrics: Record<string, number>, quantization?: Quantization): BuiltModel['card'] {
  return {
    model: 'tiny-mlp',
    version: VERSION_GOOD,
    description,
    precision,
    ...(quantization ? { quantization } : {}),
    ...signatures(parts.mlp),
    golden: {
      inputs: { [IO.inputName]: goldenTensor(parts.golden.dims, parts.golden.data) },
      outputs: { [IO.outputName]: goldenTensor([parts.golden.dims[0] as number, PARAMS.sizes[2] as number], parts.goldenOutput) },
      tolerance,
    },
    metrics,
  };
}

async function quantizedBuild(ctx: BuildContext, quantization: Quantization): Promise<BuiltModel> {
  const parts = await tinyParts(ctx);
  const graph = quantization === 'static-qdq' ? buildMlpStaticQdq(parts.mlp, IO, calibrateMlp(parts.mlp, parts.calibration)) : buildMlpDynamic(parts.mlp, IO);
  const onnx = graph.toBytes({ producerVersion: PRODUCER_VERSION });
  const checkDiff = await measureDisagreement(parts.fp32, onnx, IO, [parts.check]);
  const goldenDiff = await measureDisagreement(parts.fp32, onnx, IO, [parts.golden]);
  const what = quantization === 'static-qdq' ? 'static int8 (QDQ, activation scales calibrated on 256 sample rows)' : 'dynamic int8 (DynamicQuantizeLinear + MatMulInteger)';
  return {
    onnx,
    card: card(parts, 'int8', `Tiny synthetic MLP, ${what}; golden outputs are the fp32 build's`, toleranceFor(Math.max(checkDiff, goldenDiff)), { maxAbsDiffVsFp32: checkDiff, goldenMaxAbsDiffVsFp32: goldenDiff }, quantization),
  };
}

export const tinyMlpRecipes: Recipe[] = [
  {
    name: 'tiny-mlp-fp32',
    params: { ...PARAMS, tolerance: FP32_TOLERANCE },
    async build(ctx) {
      const parts = await tinyParts(ctx);
      return { onnx: parts.fp32, card: card(parts, 'fp32', 'Tiny synthetic MLP (16 → 32 → 5, seeded random weights), fp32', FP32_TOLERANCE, {}) };
    },
  },
  { name: 'tiny-mlp-int8-static', params: { ...PARAMS, quantization: 'static-qdq' }, build: (ctx) => quantizedBuild(ctx, 'static-qdq') },
  { name: 'tiny-mlp-int8-dynamic', params: { ...PARAMS, quantization: 'dynamic' }, build: (ctx) => quantizedBuild(ctx, 'dynamic') },
];
