import { createHash } from 'node:crypto';
import { HARD_EXAMPLE_EVENT, MAX_MQTT_PAYLOAD_BYTES, type ExampleTensor, type HardExampleData, type HardExampleInputUpload } from '@flotilla/protocol';
import type { Tensor } from '../inference/types.ts';
import { tensorBytes } from './policy.ts';

export { HARD_EXAMPLE_EVENT };

/** Puts an event in the durable outbox (the agent's `Outbox.enqueue`, or a test double). */
export type EnqueueEvent = (kind: string, data: Record<string, unknown>, opts: { priority: 'low' }) => unknown;

/**
 * Largest raw input kept with a hard example. Base64 grows bytes by a third and the event envelope
 * must stay one MQTT message (256 KiB), so inputs above this travel without their tensors
 * (`inputOmittedBytes` says how large they were).
 */
export const MAX_EXAMPLE_INPUT_BYTES = Math.floor((MAX_MQTT_PAYLOAD_BYTES * 3) / 4) - 16 * 1024;

/** A tensor as hard examples carry it: raw little-endian bytes in base64, or BYTES strings as they are. */
export function exampleTensor(t: Tensor): ExampleTensor {
  if (Array.isArray(t.data)) return { name: t.name, datatype: t.datatype, shape: [...t.shape], strings: [...t.data] };
  const view = t.data as ArrayBufferView;
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], b64: Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64') };
}

export interface HardExampleParts extends Omit<HardExampleData, 'input' | 'edgeOutput' | 'cloudOutput' | 'inputOmittedBytes'> {
  input: readonly Tensor[];
  edgeOutput: readonly Tensor[];
  cloudOutput?: readonly Tensor[];
}

/** An input as one upload: its tensors' raw bytes concatenated in order, with their length and sha256. */
export interface RawInput {
  data: Buffer;
  upload: HardExampleInputUpload;
}

/** The raw bytes of an input for a separate upload; undefined when a tensor is BYTES (no fixed layout). */
export function rawInput(input: readonly Tensor[]): RawInput | undefined {
  const parts: Buffer[] = [];
  for (const t of input) {
    if (Array.isArray(t.data)) return undefined;
    const view = t.data as ArrayBufferView;
    parts.push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
  }
  const data = Buffer.concat(parts);
  if (data.byteLength === 0) return undefined;
  return { data, upload: { bytes: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') } };
}

/**
 * The event data of one hard example. An input too large for one message is left out; with
 * `upload` (its bytes are spooled for a separate upload) the event lists the input's tensors
 * without data and says which upload holds them.
 */
export function hardExampleData(parts: HardExampleParts, maxInputBytes = MAX_EXAMPLE_INPUT_BYTES, upload?: HardExampleInputUpload): HardExampleData {
  const { input, edgeOutput, cloudOutput, ...rest } = parts;
  const bytes = tensorBytes(input);
  const keepInput = bytes <= maxInputBytes;
  const described = !keepInput && upload !== undefined;
  return {
    ...rest,
    input: keepInput ? input.map(exampleTensor) : described ? input.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })) : [],
    ...(!keepInput && { inputOmittedBytes: bytes }),
    ...(described && { inputUpload: upload }),
    edgeOutput: edgeOutput.map(exampleTensor),
    ...(cloudOutput && { cloudOutput: cloudOutput.map(exampleTensor) }),
  };
}
