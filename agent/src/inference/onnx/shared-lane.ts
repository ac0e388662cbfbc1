import { ORT_TYPE_OF, datatypeOfOrt } from '../datatypes.ts';
import type { Tensor, TensorData, TensorSpec } from '../types.ts';

/*
 * The fast lane: one SharedArrayBuffer per worker carrying one small request at a time, and its
 * answer, with no structured clone. Layout (must match session-worker.mjs):
 *   bytes 0..63      control, Int32: request seq, response seq, fast-pending flag, status, request
 *                    id, tensor count, output mask (-1 = all), output count
 *   bytes 64..1087   16 descriptors of 16 Int32: type code, name index, rank, data offset, data
 *                    length, dims[8]
 *   bytes 1088..     tensor data, each tensor 8-byte aligned
 */
export const C_REQ = 0;
export const C_RESP = 1;
export const C_FAST = 2;
export const C_STATUS = 3;
export const C_ID = 4;
export const C_COUNT = 5;
export const C_MASK = 6;
export const C_OUT_COUNT = 7;
const DESC_OFFSET = 64;
const DESC_INTS = 16;
const MAX_TENSORS = 16;
const MAX_RANK = 8;
const DATA_OFFSET = DESC_OFFSET + MAX_TENSORS * DESC_INTS * 4;
export const STATUS_OK = 0;
/** The answer (or the error) was posted on the message port instead. */
export const STATUS_POSTED = 1;

const TYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'int32', 'int64', 'float16', 'bool'] as const;
const CTORS = [Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Int32Array, BigInt64Array, Uint16Array, Uint8Array] as const;

export class SharedLane {
  readonly buffer: SharedArrayBuffer;
  readonly ctrl: Int32Array;
  private readonly desc: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly inputIndex: Map<string, number>;
  private readonly outputIndex: Map<string, number>;
  private outputs: readonly TensorSpec[] = [];

  constructor(dataBytes: number) {
    this.buffer = new SharedArrayBuffer(DATA_OFFSET + dataBytes);
    this.ctrl = new Int32Array(this.buffer, 0, 16);
    this.desc = new Int32Array(this.buffer, DESC_OFFSET, MAX_TENSORS * DESC_INTS);
    this.bytes = new Uint8Array(this.buffer, DATA_OFFSET);
    this.inputIndex = new Map();
    this.outputIndex = new Map();
  }

  /** Learns the session's input and output order (the worker names tensors by index). */
  bind(inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): this {
    inputs.forEach((s, i) => this.inputIndex.set(s.name, i));
    outputs.forEach((s, i) => this.outputIndex.set(s.name, i));
    this.outputs = outputs;
    return this;
  }

  /** Writes a request into the lane; false when it does not fit (the caller posts it instead). */
  write(id: number, inputs: readonly Tensor[], outputs: readonly string[] | undefined): boolean {
    if (inputs.length > MAX_TENSORS) return false;
    let mask = -1;
    if (outputs) {
      mask = 0;
      for (const name of outputs) {
        const i = this.outputIndex.get(name);
        if (i === undefined || i > 30) return false;
        mask |= 1 << i;
      }
    }
    let offset = 0;
    for (let n = 0; n < inputs.length; n++) {
      const t = inputs[n] as Tensor;
      const type = TYPES.indexOf(ORT_TYPE_OF[t.datatype] as (typeof TYPES)[number]);
      const name = this.inputIndex.get(t.name);
      const data = t.data;
      if (type < 0 || name === undefined || t.shape.length > MAX_RANK || !ArrayBuffer.isView(data)) return false;
      const aligned = (offset + 7) & ~7;
      if (aligned + data.byteLength > this.bytes.length) return false;
      const d = n * DESC_INTS;
      this.desc[d] = type;
      this.desc[d + 1] = name;
      this.desc[d + 2] = t.shape.length;
      this.desc[d + 3] = aligned;
      this.desc[d + 4] = data.byteLength;
      for (let k = 0; k < t.shape.length; k++) this.desc[d + 5 + k] = t.shape[k] as number;
      this.bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), aligned);
      offset = aligned + data.byteLength;
    }
    this.ctrl[C_ID] = id;
    this.ctrl[C_COUNT] = inputs.length;
    this.ctrl[C_MASK] = mask;
    return true;
  }

  /** Reads the answer the worker wrote, copying it out (the lane is reused by the next request). */
  read(): Tensor[] {
    const out: Tensor[] = [];
    for (let n = 0; n < (this.ctrl[C_OUT_COUNT] as number); n++) {
      const d = n * DESC_INTS;
      const type = TYPES[this.desc[d] as number] as string;
      const Ctor = CTORS[this.desc[d] as number] as unknown as { new (b: ArrayBuffer): TensorData };
      const start = this.desc[d + 3] as number;
      const data = new Ctor(this.bytes.slice(start, start + (this.desc[d + 4] as number)).buffer);
      const shape = Array.from(this.desc.subarray(d + 5, d + 5 + (this.desc[d + 2] as number)));
      const name = this.outputs[this.desc[d + 1] as number]?.name ?? `output_${n}`;
      out.push({ name, datatype: datatypeOfOrt(type) ?? 'FP32', shape, data });
    }
    return out;
  }
}
