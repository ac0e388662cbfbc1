import { allocate, type Tensor, type TensorData } from './datatypes.ts';
import { KServeError } from './errors.ts';

/**
 * Row operations along dim 0, for servers that batch requests: stack several requests' tensors into
 * one, and cut a batched output back into each request's rows.
 */

/** Rows (dim 0) of a tensor; a scalar counts as none. */
export function rowsOf(t: Pick<Tensor, 'shape'>): number {
  return t.shape[0] ?? 0;
}

/**
 * Stacks tensors of the same name, datatype and inner dimensions along dim 0 into a fresh tensor
 * whose buffer belongs to the caller alone (so it may be transferred to a worker thread).
 */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (!first) throw new KServeError('FLT_KSERVE_INVALID', 'nothing to stack');
  const inner = first.shape.slice(1).join(',');
  let rows = 0;
  let length = 0;
  for (const p of parts) {
    if (p.datatype !== first.datatype || p.shape.length !== first.shape.length || p.shape.slice(1).join(',') !== inner) {
      throw new KServeError('FLT_KSERVE_SHAPE_MISMATCH', `${first.name}: tensors to stack differ in datatype or inner dimensions`);
    }
    rows += rowsOf(p);
    length += p.data.length;
  }
  const shape = [rows, ...first.shape.slice(1)];
  if (first.datatype === 'BYTES') {
    return { name: first.name, datatype: first.datatype, shape, data: parts.flatMap((p) => p.data as string[]) };
  }
  const data = allocate(first.datatype, length) as Float32Array;
  let offset = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array, offset);
    offset += p.data.length;
  }
  return { name: first.name, datatype: first.datatype, shape, data: data as TensorData };
}

/**
 * Rows `start .. start + rows` of a batched tensor, copied: each caller gets a buffer of its own it
 * may keep or transfer while the batch's buffer is released.
 */
export function sliceRows(t: Tensor, start: number, rows: number): Tensor {
  const total = rowsOf(t);
  if (start < 0 || rows < 0 || start + rows > total) {
    throw new KServeError('FLT_KSERVE_SHAPE_MISMATCH', `${t.name}: rows ${start}..${start + rows} lie outside its ${total} rows`);
  }
  const per = total === 0 ? 0 : t.data.length / total;
  const data = t.data.slice(start * per, (start + rows) * per) as TensorData;
  return { name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data };
}
