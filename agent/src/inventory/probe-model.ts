/**
 * A four-float Relu model, encoded here as ONNX protobuf by hand so the agent runtime needs no
 * ONNX tooling: it is only used to find out which execution providers can really create a session.
 *
 * Wire format reference: ModelProto{ir_version=1, producer_name=2, graph=7, opset_import=8},
 * GraphProto{node=1, name=2, input=11, output=12}, NodeProto{input=1, output=2, name=3, op_type=4},
 * ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, TypeProto.Tensor{elem_type=1, shape=2},
 * TensorShapeProto{dim=1}, Dimension{dim_value=1}, OperatorSetIdProto{domain=1, version=2}.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const ONNX_FLOAT = 1;

export const PROBE_INPUT = 'x';
export const PROBE_OUTPUT = 'y';
export const PROBE_SHAPE = [1, 4] as const;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function key(field: number, wire: number): number[] {
  return varint((field << 3) | wire);
}

function int(field: number, value: number): number[] {
  return [...key(field, WIRE_VARINT), ...varint(value)];
}

function bytes(field: number, payload: number[]): number[] {
  return [...key(field, WIRE_LEN), ...varint(payload.length), ...payload];
}

function str(field: number, value: string): number[] {
  return bytes(field, [...Buffer.from(value, 'utf8')]);
}

function floatTensorInfo(name: string, dims: readonly number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensorType = [...int(1, ONNX_FLOAT), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

export function encodeProbeModel(): Uint8Array {
  const node = [...str(1, PROBE_INPUT), ...str(2, PROBE_OUTPUT), ...str(3, 'relu'), ...str(4, 'Relu')];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'flotilla_probe'),
    ...bytes(11, floatTensorInfo(PROBE_INPUT, PROBE_SHAPE)),
    ...bytes(12, floatTensorInfo(PROBE_OUTPUT, PROBE_SHAPE)),
  ];
  const model = [
    ...int(1, 8),
    ...str(2, 'flotilla-agent'),
    ...bytes(7, graph),
    ...bytes(8, [...str(1, ''), ...int(2, 13)]),
  ];
  return Uint8Array.from(model);
}
