import { allocate, ELEMENT_BYTES, type Datatype, type TensorData } from './datatypes.ts';
import { KServeError } from './errors.ts';

// The binary extension is little-endian; every platform Flotilla runs on (x86-64, arm64) is too, so
// typed arrays are copied byte for byte. Refuse to load anywhere that assumption breaks.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('@flotilla/kserve needs a little-endian platform');
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Raw bytes of a tensor in the binary extension's layout. Fixed-size types are views, not copies. */
export function encodeBinaryData(datatype: Datatype, data: TensorData): Uint8Array {
  if (datatype !== 'BYTES') {
    const typed = data as Exclude<TensorData, string[]>;
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  const parts = (data as string[]).map((s) => utf8.encode(s));
  let total = 0;
  for (const p of parts) total += 4 + p.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.byteLength, true);
    out.set(p, at + 4);
    at += 4 + p.byteLength;
  }
  return out;
}

/** The byte size a fixed-size tensor must have; null for BYTES. */
export function expectedByteSize(datatype: Datatype, count: number): number | null {
  const size = ELEMENT_BYTES[datatype];
  return size === null ? null : size * count;
}

/** Bytes → typed array. The caller has already checked the size of fixed-size types. */
export function decodeBinaryData(
  datatype: Datatype,
  bytes: Uint8Array,
  count: number,
  maxBytesElement: number,
  where: string,
): TensorData {
  if (datatype === 'BYTES') return decodeBytesElements(bytes, count, maxBytesElement, where);
  const out = allocate(datatype, count) as Exclude<TensorData, string[]>;
  // Copy: the slice may sit at an offset that is not aligned for the element type.
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  if (datatype === 'BOOL') {
    for (let i = 0; i < count; i++) {
      if ((out[i] as number) > 1) throw new KServeError('FLT_KSERVE_INVALID', `${where}: BOOL element ${i} is neither 0 nor 1`);
    }
  }
  return out;
}

function decodeBytesElements(bytes: Uint8Array, count: number, maxBytesElement: number, where: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.byteLength) {
      throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${where}: BYTES element ${i} has no length prefix`);
    }
    const len = view.getUint32(at, true);
    at += 4;
    if (len > maxBytesElement) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where}: BYTES element ${i} is longer than allowed`);
    if (at + len > bytes.byteLength) {
      throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${where}: BYTES element ${i} runs past binary_data_size`);
    }
    try {
      out.push(utf8Strict.decode(bytes.subarray(at, at + len)));
    } catch {
      throw new KServeError('FLT_KSERVE_INVALID', `${where}: BYTES element ${i} is not valid UTF-8`);
    }
    at += len;
  }
  if (at !== bytes.byteLength) {
    throw new KServeError('FLT_KSERVE_BINARY_SIZE', `${where}: binary_data_size has bytes left after ${count} BYTES elements`);
  }
  return out;
}
