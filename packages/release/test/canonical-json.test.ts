import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonBytes } from '../src/index.ts';

/** Rebuilds every object with its keys in a shuffled order, keeping the same content. */
function reorder(value: unknown, pick: (n: number) => number): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, pick));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    const shuffled: Array<[string, unknown]> = [];
    while (entries.length > 0) shuffled.push(entries.splice(pick(entries.length), 1)[0]!);
    return Object.fromEntries(shuffled.map(([k, v]) => [k, reorder(v, pick)]));
  }
  return value;
}

describe('canonical JSON', () => {
  it('is the same for any key order of the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.infiniteStream(fc.nat()), (value, stream) => {
        const it = stream[Symbol.iterator]();
        const pick = (n: number) => (it.next().value as number) % n;
        expect(canonicalJson(reorder(value, pick))).toBe(canonicalJson(value));
      }),
      { numRuns: 300 },
    );
  });

  it('parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it('sorts keys and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 0, y: -1.5 } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":-1.5,"z":0}}');
  });

  it.each([NaN, Infinity, -Infinity])('refuses the non-finite number %s', (n) => {
    expect(() => canonicalJson({ a: [n] })).toThrow(/non-finite/);
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
    expect(() => canonicalJson([undefined])).toThrow(TypeError);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/plain objects/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cycle/);
  });

  it('omits object members that are undefined, like an absent optional field', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it('writes false and true as themselves, and the same value twice in one document without calling it a cycle', () => {
    const shared = { on: false };
    expect(canonicalJson({ a: shared, b: [shared, true] })).toBe('{"a":{"on":false},"b":[{"on":false},true]}');
  });

  it('accepts an object without a prototype, as JSON.parse-like parsers build them', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    expect(canonicalJson(bare)).toBe('{"a":2,"b":1}');
  });

  it('names where a refused value sits, so a signer can find it', () => {
    expect(() => canonicalJson({ a: { b: [1, NaN] } })).toThrow('canonical JSON: non-finite number at $.a.b[1]');
    expect(() => canonicalJson({ f: () => 1 })).toThrow('canonical JSON: function at $.f has no JSON form');
    expect(() => canonicalJson({ s: [Symbol('x')] })).toThrow('canonical JSON: symbol at $.s[0] has no JSON form');
    expect(() => canonicalJson({ a: [1, undefined] })).toThrow('canonical JSON: undefined at $.a[1]');
    expect(() => canonicalJson([{ m: new Map() }])).toThrow('canonical JSON: only plain objects are allowed (at $[0].m)');
    const cyclic: unknown[] = [];
    cyclic.push({ back: cyclic });
    expect(() => canonicalJson({ c: cyclic })).toThrow('canonical JSON: cycle at $.c[0].back');
  });

  it('is the UTF-8 bytes of the canonical text', () => {
    expect(canonicalJsonBytes({ é: 'ü' }).equals(Buffer.from('{"é":"ü"}', 'utf8'))).toBe(true);
  });
});
