import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeInferRequest, decodeInferResponse, encodeInferRequest, KServeError, type KServeErrorCode } from '../src/index.ts';
import { tensorsArb } from './arbitraries.ts';

function codeOf(fn: () => unknown): KServeErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (err instanceof KServeError) return err.code;
    throw err;
  }
}

const req = (inputs: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ inputs, ...extra });
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A binary-extension body: JSON header, then raw bytes. */
function framed(header: unknown, tail: number[]): { body: Uint8Array; headerLength: number } {
  const head = utf8(JSON.stringify(header));
  const body = new Uint8Array(head.byteLength + tail.length);
  body.set(head);
  body.set(tail, head.byteLength);
  return { body, headerLength: head.byteLength };
}

describe('request refusals', () => {
  it('refuses a body that is not JSON as FLT_KSERVE_MALFORMED', () => {
    expect(codeOf(() => decodeInferRequest('{"inputs": ['))).toBe('FLT_KSERVE_MALFORMED');
    expect(codeOf(() => decodeInferRequest(new Uint8Array([0xff, 0xfe])))).toBe('FLT_KSERVE_MALFORMED');
  });

  it('refuses a JSON value that is not a request object as FLT_KSERVE_INVALID', () => {
    expect(codeOf(() => decodeInferRequest('[1,2]'))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest('{}'))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [1] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: '', datatype: 'FP32', shape: [1], data: [1] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [-1], data: [] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [1.5], data: [1] }])))).toBe('FLT_KSERVE_INVALID');
  });

  it('refuses repeated tensor names', () => {
    const t = { name: 'x', datatype: 'FP32', shape: [1], data: [1] };
    expect(codeOf(() => decodeInferRequest(req([t, t])))).toBe('FLT_KSERVE_INVALID');
  });

  it('refuses unknown and unsupported datatypes as FLT_KSERVE_DATATYPE', () => {
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FLOAT', shape: [1], data: [1] }])))).toBe('FLT_KSERVE_DATATYPE');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'UINT64', shape: [1], data: [1] }])))).toBe('FLT_KSERVE_DATATYPE');
  });

  it('refuses data whose element count differs from the shape as FLT_KSERVE_SHAPE_MISMATCH', () => {
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [3], data: [1, 2] }])))).toBe('FLT_KSERVE_SHAPE_MISMATCH');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [1], data: [1, 2] }])))).toBe('FLT_KSERVE_SHAPE_MISMATCH');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [2], data: [[[[[[[[[[1]]]]]]]]], 2] }])))).toBe(
      'FLT_KSERVE_SHAPE_MISMATCH',
    );
  });

  it('refuses values outside the datatype', () => {
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'UINT8', shape: [1], data: [256] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'INT32', shape: [1], data: [0.5] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'BOOL', shape: [1], data: [1] }])))).toBe('FLT_KSERVE_INVALID');
    expect(codeOf(() => decodeInferRequest(req([{ name: 'x', datatype: 'FP32', shape: [1], data: ['1'] }])))).toBe('FLT_KSERVE_INVALID');
  });

  it('refuses a binary_data_size that disagrees with the shape, or with the bytes that follow', () => {
    const t = (size: number) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: size } }] });
    const wrongSize = framed(t(4), [0, 0, 0, 0]);
    expect(codeOf(() => decodeInferRequest(wrongSize.body, wrongSize))).toBe('FLT_KSERVE_BINARY_SIZE');
    const short = framed(t(8), [0, 0, 0, 0]);
    expect(codeOf(() => decodeInferRequest(short.body, short))).toBe('FLT_KSERVE_BINARY_SIZE');
    const trailing = framed(t(8), [0, 0, 0, 0, 0, 0, 0, 0, 9]);
    expect(codeOf(() => decodeInferRequest(trailing.body, trailing))).toBe('FLT_KSERVE_BINARY_SIZE');
    expect(codeOf(() => decodeInferRequest(JSON.stringify(t(8))))).toBe('FLT_KSERVE_BINARY_SIZE');
  });

  it('refuses BYTES elements whose length prefixes overrun binary_data_size', () => {
    const b = framed({ inputs: [{ name: 's', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 6 } }] }, [9, 0, 0, 0, 65, 66]);
    expect(codeOf(() => decodeInferRequest(b.body, b))).toBe('FLT_KSERVE_BINARY_SIZE');
  });

  it('refuses a broken Inference-Header-Content-Length as FLT_KSERVE_MALFORMED', () => {
    const body = utf8(req([{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }]));
    expect(codeOf(() => decodeInferRequest(body, { headerLength: 'abc' }))).toBe('FLT_KSERVE_MALFORMED');
    expect(codeOf(() => decodeInferRequest(body, { headerLength: -1 }))).toBe('FLT_KSERVE_MALFORMED');
    expect(codeOf(() => decodeInferRequest(body, { headerLength: body.byteLength + 1 }))).toBe('FLT_KSERVE_MALFORMED');
    expect(codeOf(() => decodeInferRequest(body, { headerLength: 3 }))).toBe('FLT_KSERVE_MALFORMED');
  });

  it('refuses shapes, counts and bodies over the limits before allocating, as FLT_KSERVE_TOO_LARGE', () => {
    const huge = req([{ name: 'x', datatype: 'FP64', shape: [1e6, 1e6, 1e6], data: [] }]);
    expect(codeOf(() => decodeInferRequest(huge))).toBe('FLT_KSERVE_TOO_LARGE');
    const body = req([{ name: 'x', datatype: 'FP32', shape: [4], data: [1, 2, 3, 4] }]);
    expect(codeOf(() => decodeInferRequest(body, { limits: { maxElements: 3 } }))).toBe('FLT_KSERVE_TOO_LARGE');
    expect(codeOf(() => decodeInferRequest(body, { limits: { maxBodyBytes: 10 } }))).toBe('FLT_KSERVE_TOO_LARGE');
    const many = req(Array.from({ length: 65 }, (_, i) => ({ name: `x${i}`, datatype: 'FP32', shape: [1], data: [1] })));
    expect(codeOf(() => decodeInferRequest(many))).toBe('FLT_KSERVE_TOO_LARGE');
  });

  it('keeps a __proto__ parameter from reaching any prototype', () => {
    const body = '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"parameters":{"__proto__":{"polluted":true}}}';
    expect(codeOf(() => decodeInferRequest(body))).toBe('FLT_KSERVE_INVALID');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('fuzzed input', () => {
  const onlyCoded = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof KServeError)) throw err;
    }
  };

  it('never throws anything but a coded error for arbitrary bytes and header lengths', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.option(fc.oneof(fc.nat(300), fc.string()), { nil: undefined }), (bytes, headerLength) => {
        onlyCoded(() => decodeInferRequest(bytes, { headerLength }));
        onlyCoded(() => decodeInferResponse(bytes, { headerLength }));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but a coded error for arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        onlyCoded(() => decodeInferRequest(JSON.stringify({ inputs: value })));
        onlyCoded(() => decodeInferRequest(JSON.stringify(value)));
        onlyCoded(() => decodeInferResponse(JSON.stringify({ model_name: 'm', outputs: value })));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but a coded error when bytes of a valid binary request are flipped', () => {
    fc.assert(
      fc.property(tensorsArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (inputs, flips) => {
        const encoded = encodeInferRequest({ inputs }, { binaryInputs: true });
        const bytes = Uint8Array.from(encoded.body as Uint8Array);
        for (const [at, v] of flips) bytes[at % bytes.length] = v;
        onlyCoded(() => decodeInferRequest(bytes, { headerLength: encoded.headerLength }));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but a coded error for structurally plausible tensors with wrong fields', () => {
    const field = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('FP32', 'BYTES', 'INT64', 'BOOL'));
    const tensor = fc.record({ name: fc.oneof(fc.string(), field), datatype: field, shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 4 })), field), data: field, parameters: field }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(tensor, { maxLength: 3 }), (inputs) => {
        onlyCoded(() => decodeInferRequest(JSON.stringify({ inputs })));
      }),
      { numRuns: 2000 },
    );
  });
});
