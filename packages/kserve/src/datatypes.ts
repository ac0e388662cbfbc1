import { KServeError } from './errors.ts';

/**
 * The Open Inference Protocol datatypes Flotilla serves. UINT16/32/64 exist in the protocol but no
 * Flotilla model uses them, so they are refused with FLT_KSERVE_DATATYPE rather than half-supported.
 */
export type Datatype = 'BOOL' | 'UINT8' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES';

/** Row-major tensor contents, one array type per datatype (FP16 as raw bits, BOOL as 0/1 bytes). */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | string[];

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** Bytes per element of each fixed-size datatype; BYTES is variable (null). */
export const ELEMENT_BYTES: Readonly<Record<Datatype, number | null>> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: null,
};

export const DATATYPES = Object.keys(ELEMENT_BYTES) as Datatype[];

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && Object.hasOwn(ELEMENT_BYTES, value);
}

export function parseDatatype(value: unknown, where: string): Datatype {
  if (isDatatype(value)) return value;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 32)) : typeof value;
  throw new KServeError('FLT_KSERVE_DATATYPE', `${where}: datatype ${shown} is unknown or not supported`);
}

/** An empty array of the right kind for a datatype. */
export function allocate(datatype: Datatype, count: number): TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(count);
    case 'INT8':
      return new Int8Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'INT64':
      return new BigInt64Array(count);
    case 'FP16':
      return new Uint16Array(count);
    case 'FP32':
      return new Float32Array(count);
    case 'FP64':
      return new Float64Array(count);
    case 'BYTES':
      return new Array<string>(count).fill('');
  }
}

/** True when `data` is the array kind `datatype` calls for. */
export function dataMatchesDatatype(datatype: Datatype, data: TensorData): boolean {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return data instanceof Uint8Array;
    case 'INT8':
      return data instanceof Int8Array;
    case 'INT16':
      return data instanceof Int16Array;
    case 'INT32':
      return data instanceof Int32Array;
    case 'INT64':
      return data instanceof BigInt64Array;
    case 'FP16':
      return data instanceof Uint16Array;
    case 'FP32':
      return data instanceof Float32Array;
    case 'FP64':
      return data instanceof Float64Array;
    case 'BYTES':
      return Array.isArray(data);
  }
}
