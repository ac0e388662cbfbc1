import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** The element types the model kit writes. Values are ONNX `TensorProto.DataType` numbers. */
export const ElemType = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
} as const;

export type ElemTypeName = keyof typeof ElemType;

type TypedData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

/** A constant tensor ready to become an initializer. */
export interface ConstTensor {
  readonly type: ElemTypeName;
  readonly dims: readonly number[];
  readonly data: TypedData;
}

function checkLength(dims: readonly number[], length: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== length) throw new RangeError(`tensor dims [${dims.join(',')}] need ${expected} values, got ${length}`);
}

export function float32Tensor(dims: readonly number[], data: ArrayLike<number>): ConstTensor {
  checkLength(dims, data.length);
  return { type: 'float32', dims, data: Float32Array.from(data) };
}

export function int8Tensor(dims: readonly number[], data: ArrayLike<number>): ConstTensor {
  checkLength(dims, data.length);
  return { type: 'int8', dims, data: Int8Array.from(data) };
}

export function uint8Tensor(dims: readonly number[], data: ArrayLike<number>): ConstTensor {
  checkLength(dims, data.length);
  return { type: 'uint8', dims, data: Uint8Array.from(data) };
}

export function int64Tensor(dims: readonly number[], data: readonly number[]): ConstTensor {
  checkLength(dims, data.length);
  return { type: 'int64', dims, data: BigInt64Array.from(data.map((v) => BigInt(v))) };
}

/** ONNX raw_data is little-endian; every platform Node runs Flotilla on is little-endian too. */
export function rawBytes(tensor: ConstTensor): Uint8Array {
  const { buffer, byteOffset, byteLength } = tensor.data;
  return new Uint8Array(buffer.slice(byteOffset, byteOffset + byteLength));
}
