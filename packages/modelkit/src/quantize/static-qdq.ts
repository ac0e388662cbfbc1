import { float32Tensor, int8Tensor, uint8Tensor } from '../onnx/tensor.ts';
import { writeMlpGraph } from '../models/mlp.ts';
import type { DenseWriter, Mlp, MlpGraphIo } from '../models/mlp.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import { activationParamsUint8, quantizeWeightsInt8 } from './params.ts';
import type { LayerRanges } from './calibrate.ts';

/**
 * Static int8 in QDQ form: each layer's input goes through QuantizeLinear/DequantizeLinear with a
 * scale calibrated from sample data, and each weight is stored as int8 behind a DequantizeLinear.
 * onnxruntime fuses these pairs into integer kernels; other runtimes can still run the graph as is.
 */
export function buildMlpStaticQdq(mlp: Mlp, io: MlpGraphIo, ranges: LayerRanges): GraphBuilder {
  return writeMlpGraph(mlp, io, staticQdqDense(ranges));
}

/** The QDQ dense-layer writer on its own, for graphs that wrap it. */
export function staticQdqDense(ranges: LayerRanges): DenseWriter {
  return (g: GraphBuilder, x, layer, index) => {
    const [min, max] = ranges[index] ?? [0, 1];
    const act = activationParamsUint8(min, max);
    const xScale = g.constant(`dense${index}.input_scale`, float32Tensor([], [act.scale]));
    const xZero = g.constant(`dense${index}.input_zero_point`, uint8Tensor([], [act.zeroPoint]));
    const xq = g.op('QuantizeLinear', [x, xScale, xZero]);
    const xdq = g.op('DequantizeLinear', [xq, xScale, xZero]);

    const wq = quantizeWeightsInt8(layer.w);
    const w = g.constant(`dense${index}.weight_quantized`, int8Tensor([layer.inSize, layer.outSize], wq.values));
    const wScale = g.constant(`dense${index}.weight_scale`, float32Tensor([], [wq.scale]));
    const wZero = g.constant(`dense${index}.weight_zero_point`, int8Tensor([], [0]));
    const wdq = g.op('DequantizeLinear', [w, wScale, wZero]);

    const b = g.constant(`dense${index}.bias`, float32Tensor([layer.outSize], layer.b));
    return g.op('Add', [g.op('MatMul', [xdq, wdq]), b]);
  };
}
