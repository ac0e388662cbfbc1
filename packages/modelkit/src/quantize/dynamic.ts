import { ElemType, float32Tensor, int8Tensor } from '../onnx/tensor.ts';
import { intAttr } from '../onnx/graph-builder.ts';
import { writeMlpGraph } from '../models/mlp.ts';
import type { DenseWriter, Mlp, MlpGraphIo } from '../models/mlp.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import { quantizeWeightsInt8 } from './params.ts';

/**
 * Dynamic int8: weights stored as int8; each activation is quantized at run time
 * (DynamicQuantizeLinear), multiplied in integers (MatMulInteger) and rescaled to float by
 * input_scale × weight_scale. No calibration data needed.
 */
export function buildMlpDynamic(mlp: Mlp, io: MlpGraphIo): GraphBuilder {
  const dense: DenseWriter = (g: GraphBuilder, x, layer, index) => {
    const [xq, xScale, xZero] = g.node('DynamicQuantizeLinear', [x], 3) as [string, string, string];
    const wq = quantizeWeightsInt8(layer.w);
    const w = g.constant(`dense${index}.weight_quantized`, int8Tensor([layer.inSize, layer.outSize], wq.values));
    const wZero = g.constant(`dense${index}.weight_zero_point`, int8Tensor([], [0]));
    const wScale = g.constant(`dense${index}.weight_scale`, float32Tensor([], [wq.scale]));
    const acc = g.op('MatMulInteger', [xq, w, xZero, wZero]);
    const scale = g.op('Mul', [xScale, wScale]);
    const y = g.op('Mul', [g.op('Cast', [acc], { to: intAttr(ElemType.float32) }), scale]);
    const b = g.constant(`dense${index}.bias`, float32Tensor([layer.outSize], layer.b));
    return g.op('Add', [y, b]);
  };
  return writeMlpGraph(mlp, io, dense);
}
