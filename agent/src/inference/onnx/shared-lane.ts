import { ORT_TYPE_OF, datatypeOfOrt } from '../datatypes.ts';
import type { Tensor, TensorData, TensorSpec } from '../types.ts';

/*
 * The fast lane: one SharedArrayBuffer per worker with a few request slots, so several small
 * requests can be in the worker at once (pipelined, answered back to back) with no structured
 * clone. Layout (must match session-worker.mjs):
 *   bytes 0..63   global control, Int32: request seq (the worker sleeps on it), response seq (the
 *                 agent thread waits on it), worker-sleeping flag, slot count, slot stride
 *   then `slots` slots of `stride` bytes each:
 *     bytes 0..63      slot control, Int32: state, status, request id, tensor count, output mask
 *                      (-1 = all), output count, run time (µs)
 *     bytes 64..1087   16 descriptors of 16 Int32: type code, name index, rank, data offset, data
 *                      length, dims[8]
 *     bytes 1088..     tensor data, each tensor 8-byte aligned
 * A slot is FREE (the agent may write it), READY (the worker may take it) or DONE (answered; the
 * agent reads it and frees it). Each side only moves a slot out of the states it owns.
 */
export const C_REQ = 0;
export const C_RESP = 1;
export const C_SLEEPING = 2;
export const C_SLOTS = 3;
export const C_STRIDE = 4;
const GLOBAL_BYTES = 64;
const S_STATE = 0;
const S_STATUS = 1;
const S_ID = 2;
const S_COUNT = 3;
const S_MASK = 4;
const S_OUT_COUNT = 5;
const S_RUN_US = 6;
const SLOT_CTRL_INTS = 16;
const DESC_INTS = 16;
const MAX_TENSORS = 16;
const MAX_RANK = 8;
const SLOT_HEADER_BYTES = SLOT_CTRL_INTS * 4 + MAX_TENSORS * DESC_INTS * 4;
export const FREE = 0;
export const READY = 1;
export const DONE = 2;
export const STATUS_OK = 0;
/** The answer (or the error) was posted on the message port instead. */
export const STATUS_POSTED = 1;

const TYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'int32', 'int64', 'float16', 'bool'] as const;
const CTORS = [Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Int32Array, BigInt64Array, Uint16Array, Uint8Array] as const;

interface Slot {
  ctrl: Int32Array;
  desc: Int32Array;
  bytes: Uint8Array;
}

export class SharedLane {
  readonly buffer: SharedArrayBuffer;
  /** Global control words (C_*). */
  readonly ctrl: Int32Array;
  readonly slotCount: number;
  private readonly slots: Slot[];
  private readonly inputIndex = new Map<string, number>();
  private readonly outputIndex = new Map<string, number>();
  private outputs: readonly TensorSpec[] = [];

  /** `dataBytes`: tensor bytes one request (and its answer) may use; `slots`: requests in the worker at once. */
  constructor(dataBytes: number, slots: number) {
    const data = (dataBytes + 7) & ~7;
    const stride = SLOT_HEADER_BYTES + data;
    this.buffer = new SharedArrayBuffer(GLOBAL_BYTES + slots * stride);
    this.ctrl = new Int32Array(this.buffer, 0, GLOBAL_BYTES / 4);
    this.ctrl[C_SLOTS] = slots;
    this.ctrl[C_STRIDE] = stride;
    this.slotCount = slots;
    this.slots = Array.from({ length: slots }, (_, k) => {
      const base = GLOBAL_BYTES + k * stride;
      return {
        ctrl: new Int32Array(this.buffer, base, SLOT_CTRL_INTS),
        desc: new Int32Array(this.buffer, base + SLOT_CTRL_INTS * 4, MAX_TENSORS * DESC_INTS),
        bytes: new Uint8Array(this.buffer, base + SLOT_HEADER_BYTES, data),
      };
    });
  }

  /** Learns the session's input and output order (the worker names tensors by index). */
  bind(inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): this {
    inputs.forEach((s, i) => this.inputIndex.set(s.name, i));
    outputs.forEach((s, i) => this.outputIndex.set(s.name, i));
    this.outputs = outputs;
    return this;
  }

  state(slot: number): number {
    return Atomics.load((this.slots[slot] as Slot).ctrl, S_STATE);
  }

  /** Whether a DONE slot's answer is in the slot (else it was posted). */
  answeredInSlot(slot: number): boolean {
    return (this.slots[slot] as Slot).ctrl[S_STATUS] === STATUS_OK;
  }

  /**
   * Writes a request into a FREE slot and hands it to the worker (READY); false when it does not
   * fit (the caller posts it instead). The caller then bumps C_REQ so a sleeping worker wakes.
   */
  submit(slot: number, id: number, inputs: readonly Tensor[], outputs: readonly string[] | undefined): boolean {
    const s = this.slots[slot] as Slot;
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
      if (aligned + data.byteLength > s.bytes.length) return false;
      const d = n * DESC_INTS;
      s.desc[d] = type;
      s.desc[d + 1] = name;
      s.desc[d + 2] = t.shape.length;
      s.desc[d + 3] = aligned;
      s.desc[d + 4] = data.byteLength;
      for (let k = 0; k < t.shape.length; k++) s.desc[d + 5 + k] = t.shape[k] as number;
      s.bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), aligned);
      offset = aligned + data.byteLength;
    }
    s.ctrl[S_ID] = id;
    s.ctrl[S_COUNT] = inputs.length;
    s.ctrl[S_MASK] = mask;
    // The store publishes everything written above to the worker.
    Atomics.store(s.ctrl, S_STATE, READY);
    return true;
  }

  /** Reads the answer in a DONE slot, copying it out (the slot is reused by the next request). */
  read(slot: number): Tensor[] {
    const s = this.slots[slot] as Slot;
    const out: Tensor[] = [];
    const count = s.ctrl[S_OUT_COUNT] as number;
    for (let n = 0; n < count; n++) {
      const d = n * DESC_INTS;
      const code = s.desc[d] as number;
      const Ctor = CTORS[code] as unknown as { new (b: ArrayBuffer): TensorData };
      const start = s.desc[d + 3] as number;
      const data = new Ctor(s.bytes.slice(start, start + (s.desc[d + 4] as number)).buffer);
      const shape = Array.from(s.desc.subarray(d + 5, d + 5 + (s.desc[d + 2] as number)));
      const name = this.outputs[s.desc[d + 1] as number]?.name ?? `output_${n}`;
      out.push({ name, datatype: datatypeOfOrt(TYPES[code] as string) ?? 'FP32', shape, data });
    }
    return out;
  }

  /** How long the worker took to run a DONE slot's request (µs). */
  runUs(slot: number): number {
    return (this.slots[slot] as Slot).ctrl[S_RUN_US] as number;
  }

  /** Gives a DONE slot back to the agent side. */
  free(slot: number): void {
    Atomics.store((this.slots[slot] as Slot).ctrl, S_STATE, FREE);
  }
}
