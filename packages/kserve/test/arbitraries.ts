import fc from 'fast-check';
import type { Datatype, Tensor, TensorData } from '../src/index.ts';
import { halfToNumber, numberToHalf } from '../src/index.ts';

/** Shapes with a bounded element count, so property runs stay fast. */
const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 });

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Values that survive JSON as well as binary: finite floats, safe int64s. */
function dataArb(datatype: Datatype, n: number): fc.Arbitrary<TensorData> {
  const ints = (min: number, max: number) => fc.array(fc.integer({ min, max }), { minLength: n, maxLength: n });
  switch (datatype) {
    case 'BOOL':
      return ints(0, 1).map((a) => Uint8Array.from(a));
    case 'UINT8':
      return ints(0, 255).map((a) => Uint8Array.from(a));
    case 'INT8':
      return ints(-128, 127).map((a) => Int8Array.from(a));
    case 'INT16':
      return ints(-32768, 32767).map((a) => Int16Array.from(a));
    case 'INT32':
      return ints(-2147483648, 2147483647).map((a) => Int32Array.from(a));
    case 'INT64':
      return fc
        .array(fc.bigInt({ min: -(2n ** 53n) + 1n, max: 2n ** 53n - 1n }), { minLength: n, maxLength: n })
        .map((a) => BigInt64Array.from(a));
    case 'FP16':
      return fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -60000, max: 60000 }), { minLength: n, maxLength: n })
        .map((a) => Uint16Array.from(a, numberToHalf));
    case 'FP32':
      return fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));
    case 'FP64':
      return fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }).map((a) => Float64Array.from(a));
    case 'BYTES':
      return fc.array(fc.string({ unit: 'grapheme', maxLength: 8 }), { minLength: n, maxLength: n });
  }
}

export const datatypeArb = fc.constantFrom<Datatype>('BOOL', 'UINT8', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES');

export function tensorArb(name: string): fc.Arbitrary<Tensor> {
  return fc
    .tuple(datatypeArb, shapeArb)
    .chain(([datatype, shape]) => dataArb(datatype, count(shape)).map((data): Tensor => ({ name, datatype, shape, data })));
}

/** 1-4 tensors with distinct names. */
export const tensorsArb: fc.Arbitrary<Tensor[]> = fc
  .integer({ min: 1, max: 4 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => tensorArb(`t${i}`))));

/**
 * Element-wise comparison. Binary payloads are byte copies, so -0 must stay -0 (`exact`); JSON
 * writes -0 as 0, the one float difference it is allowed to make.
 */
export function sameData(a: TensorData, b: TensorData, exact: boolean): boolean {
  if (a.length !== b.length || a.constructor !== b.constructor) return false;
  for (let i = 0; i < a.length; i++) {
    // FP16 travels as bits; compare the values they stand for.
    const half = a instanceof Uint16Array && !exact;
    const x = half ? halfToNumber(a[i] as number) : a[i];
    const y = half ? halfToNumber(b[i] as number) : b[i];
    if (Object.is(x, y)) continue;
    if (exact || x !== y) return false;
  }
  return true;
}
