import { describe, expect, it } from 'vitest';
import { concatRows, KServeError, sliceRows, type Tensor } from '../src/index.ts';

const t = (rows: number, start: number): Tensor => ({
  name: 'x',
  datatype: 'FP32',
  shape: [rows, 2],
  data: Float32Array.from({ length: rows * 2 }, (_, i) => start + i),
});

describe('row stacking', () => {
  it('stacks tensors along dim 0 and slices each request back out unchanged', () => {
    const parts = [t(1, 0), t(3, 10), t(2, 100)];
    const batch = concatRows(parts);
    expect(batch.shape).toEqual([6, 2]);
    expect(sliceRows(batch, 0, 1)).toEqual(parts[0]);
    expect(sliceRows(batch, 1, 3)).toEqual(parts[1]);
    expect(sliceRows(batch, 4, 2)).toEqual(parts[2]);
  });

  it('gives every slice a buffer of its own', () => {
    const batch = concatRows([t(2, 0), t(2, 4)]);
    const a = sliceRows(batch, 0, 2);
    (batch.data as Float32Array)[0] = 99;
    expect((a.data as Float32Array)[0]).toBe(0);
  });

  it('stacks BYTES tensors', () => {
    const batch = concatRows([
      { name: 's', datatype: 'BYTES', shape: [1], data: ['a'] },
      { name: 's', datatype: 'BYTES', shape: [2], data: ['b', 'c'] },
    ]);
    expect(batch).toEqual({ name: 's', datatype: 'BYTES', shape: [3], data: ['a', 'b', 'c'] });
  });

  it('refuses tensors whose inner dimensions differ, and slices outside the rows', () => {
    const other: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) };
    expect(() => concatRows([t(1, 0), other])).toThrow(KServeError);
    expect(() => sliceRows(t(2, 0), 1, 2)).toThrow(KServeError);
  });
});
