import type { Datatype, TensorData } from './types.ts';

/** onnxruntime's name for each KServe v2 datatype. */
export const ORT_TYPE_OF: Readonly<Record<Datatype, string>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const DATATYPE_OF_ORT: Readonly<Record<string, Datatype>> = Object.fromEntries(
  Object.entries(ORT_TYPE_OF).map(([datatype, ort]) => [ort, datatype as Datatype]),
);

/** The KServe v2 datatype for an onnxruntime tensor type, or undefined for types Flotilla does not serve. */
export function datatypeOfOrt(ortType: string): Datatype | undefined {
  return DATATYPE_OF_ORT[ortType];
}

type TypedArrayCtor = { new (length: number): Exclude<TensorData, string[]> };

/** The typed array that carries each datatype (BYTES travels as a string array). */
export const ARRAY_OF: Readonly<Record<Exclude<Datatype, 'BYTES'>, TypedArrayCtor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** True when `data` is the container this datatype travels in. */
export function dataMatchesDatatype(datatype: Datatype, data: TensorData): boolean {
  if (datatype === 'BYTES') return Array.isArray(data);
  return data instanceof ARRAY_OF[datatype];
}
