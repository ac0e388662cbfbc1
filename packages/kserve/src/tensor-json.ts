import { allocate, type Datatype, type TensorData } from './datatypes.ts';
import { KServeError } from './errors.ts';
import { halfToNumber, numberToHalf } from './half.ts';

const INT_RANGE: Partial<Record<Datatype, readonly [number, number]>> = {
  UINT8: [0, 255],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
};

/**
 * Flattens JSON `data` (flat, or nested as the shape) without recursion. Returns null as soon as
 * more than `count` elements appear, so an oversized body costs no more than its parse.
 */
function flatten(data: unknown[], count: number, maxDepth: number, where: string): unknown[] | null {
  let flat = true;
  for (const v of data) {
    if (Array.isArray(v)) {
      flat = false;
      break;
    }
  }
  if (flat) return data.length > count ? null : data;
  const out: unknown[] = [];
  const stack: Array<{ arr: unknown[]; i: number }> = [{ arr: data, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { arr: unknown[]; i: number };
    if (top.i >= top.arr.length) {
      stack.pop();
      continue;
    }
    const v = top.arr[top.i++];
    if (Array.isArray(v)) {
      if (stack.length >= maxDepth) throw new KServeError('FLT_KSERVE_SHAPE_MISMATCH', `${where}: data nests deeper than its shape`);
      stack.push({ arr: v, i: 0 });
    } else {
      if (out.length >= count) return null;
      out.push(v);
    }
  }
  return out;
}

function bad(where: string, i: number, what: string): KServeError {
  return new KServeError('FLT_KSERVE_INVALID', `${where}: data[${i}] is not ${what}`);
}

/** JSON `data` → typed array, checking every element against the datatype and the count. */
export function decodeJsonData(
  datatype: Datatype,
  data: unknown[],
  count: number,
  maxDepth: number,
  maxBytesElement: number,
  where: string,
): TensorData {
  const values = flatten(data, count, maxDepth, where);
  if (values === null || values.length !== count) {
    throw new KServeError('FLT_KSERVE_SHAPE_MISMATCH', `${where}: data element count does not match shape (${count})`);
  }
  const out = allocate(datatype, count);
  switch (datatype) {
    case 'BOOL': {
      const a = out as Uint8Array;
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v !== 'boolean') throw bad(where, i, 'a boolean');
        a[i] = v ? 1 : 0;
      }
      return a;
    }
    case 'UINT8':
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      const [lo, hi] = INT_RANGE[datatype] as readonly [number, number];
      const a = out as Uint8Array | Int8Array | Int16Array | Int32Array;
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(where, i, `an integer in ${datatype} range`);
        a[i] = v;
      }
      return a;
    }
    case 'INT64': {
      const a = out as BigInt64Array;
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(where, i, 'a safe integer');
        a[i] = BigInt(v);
      }
      return a;
    }
    case 'FP16':
    case 'FP32':
    case 'FP64': {
      // JSON has no NaN; JSON.stringify writes null for non-finite floats, so null reads back as NaN.
      const a = out as Float32Array | Float64Array | Uint16Array;
      const half = datatype === 'FP16';
      for (let i = 0; i < count; i++) {
        const v = values[i];
        let n: number;
        if (typeof v === 'number') n = v;
        else if (v === null) n = Number.NaN;
        else throw bad(where, i, 'a number');
        a[i] = half ? numberToHalf(n) : n;
      }
      return a;
    }
    case 'BYTES': {
      const a = out as string[];
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v !== 'string') throw bad(where, i, 'a string');
        if (v.length > maxBytesElement) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where}: data[${i}] is longer than allowed`);
        a[i] = v;
      }
      return a;
    }
  }
}

/** Typed array → JSON-ready array (row-major, flat). */
export function encodeJsonData(datatype: Datatype, data: TensorData, where: string): unknown[] {
  switch (datatype) {
    case 'BOOL':
      return Array.from(data as Uint8Array, (v) => v !== 0);
    case 'FP16':
      return Array.from(data as Uint16Array, halfToNumber);
    case 'INT64':
      return Array.from(data as BigInt64Array, (v) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n)) {
          throw new KServeError('FLT_KSERVE_INVALID', `${where}: INT64 value ${v} cannot travel as a JSON number; ask for binary data`);
        }
        return n;
      });
    case 'BYTES':
      return data as string[];
    default:
      return Array.from(data as Float32Array);
  }
}
