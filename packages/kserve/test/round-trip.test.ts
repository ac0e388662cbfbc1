import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  halfToNumber,
  numberToHalf,
  wantsBinaryOutput,
  type Tensor,
} from '../src/index.ts';
import { sameData, tensorsArb } from './arbitraries.ts';

function expectSameTensors(got: Tensor[], want: Tensor[], exact: boolean): void {
  expect(got.map((t) => [t.name, t.datatype, t.shape])).toEqual(want.map((t) => [t.name, t.datatype, t.shape]));
  got.forEach((t, i) => expect(sameData(t.data, (want[i] as Tensor).data, exact)).toBe(true));
}

describe('request round trip', () => {
  it('decodes what it encodes, as JSON and as binary, for every datatype', () => {
    fc.assert(
      fc.property(tensorsArb, fc.boolean(), fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), (inputs, binary, id) => {
        const encoded = encodeInferRequest({ inputs, ...(id !== undefined && { id }) }, { binaryInputs: binary });
        expect(encoded.headerLength !== undefined).toBe(binary);
        const decoded = decodeInferRequest(encoded.body, { headerLength: encoded.headerLength });
        expectSameTensors(decoded.inputs, inputs, binary);
        expect(decoded.id).toBe(id);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the requested outputs and their binary_data choice', () => {
    const encoded = encodeInferRequest({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: new Float32Array([1]) }],
      outputs: [{ name: 'a', binary: true }, { name: 'b', binary: false }, { name: 'c' }],
      binaryOutput: true,
    });
    const decoded = decodeInferRequest(encoded.body);
    expect(decoded.binaryOutput).toBe(true);
    expect(wantsBinaryOutput(decoded, 'a')).toBe(true);
    expect(wantsBinaryOutput(decoded, 'b')).toBe(false);
    expect(wantsBinaryOutput(decoded, 'c')).toBe(true);
  });

  it('accepts JSON data nested as the shape', () => {
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [2, 2], data: [[1, 2], [3, 4]] }] });
    expect(Array.from(decodeInferRequest(body).inputs[0]?.data as Int32Array)).toEqual([1, 2, 3, 4]);
  });

  it('reads BYTES elements from the binary section with their 4-byte little-endian lengths', () => {
    const encoded = encodeInferRequest({ inputs: [{ name: 's', datatype: 'BYTES', shape: [2], data: ['hé', ''] }] }, { binaryInputs: true });
    const bytes = encoded.body as Uint8Array;
    const binary = bytes.subarray(encoded.headerLength);
    expect(Array.from(binary)).toEqual([3, 0, 0, 0, 0x68, 0xc3, 0xa9, 0, 0, 0, 0]);
    expect(decodeInferRequest(bytes, { headerLength: encoded.headerLength }).inputs[0]?.data).toEqual(['hé', '']);
  });
});

describe('response round trip', () => {
  it('decodes what it encodes with any mix of binary and JSON outputs', () => {
    fc.assert(
      fc.property(tensorsArb, fc.func(fc.boolean()), (outputs, choose) => {
        const encoded = encodeInferResponse({ model_name: 'm', model_version: '1', outputs }, (name) => choose(name));
        const decoded = decodeInferResponse(encoded.body, { headerLength: encoded.headerLength });
        expect(decoded.model_name).toBe('m');
        expect(decoded.model_version).toBe('1');
        decoded.outputs.forEach((t, i) => expectSameTensors([t], [outputs[i] as Tensor], choose(t.name)));
      }),
      { numRuns: 300 },
    );
  });

  it('writes binary outputs as binary_data_size with the raw little-endian bytes after the header', () => {
    const encoded = encodeInferResponse(
      { model_name: 'm', outputs: [{ name: 'p', datatype: 'FP32', shape: [2], data: new Float32Array([1, -2]) }] },
      () => true,
    );
    const bytes = encoded.body as Uint8Array;
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, encoded.headerLength)));
    expect(header.outputs[0]).toEqual({ name: 'p', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } });
    const tail = bytes.subarray(encoded.headerLength as number);
    expect(Array.from(tail)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  });

  it('writes non-finite floats as null in JSON and reads null back as NaN', () => {
    const encoded = encodeInferResponse({ model_name: 'm', outputs: [{ name: 'p', datatype: 'FP32', shape: [1], data: new Float32Array([Number.NaN]) }] });
    expect(encoded.body).toContain('"data":[null]');
    expect(Number.isNaN((decodeInferResponse(encoded.body).outputs[0]?.data as Float32Array)[0])).toBe(true);
  });
});

describe('fp16', () => {
  it('converts every finite half bit pattern to a number and back unchanged', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exp = (bits >> 10) & 0x1f;
      if (exp === 0x1f) continue;
      expect(numberToHalf(halfToNumber(bits))).toBe(bits);
    }
  });
});
