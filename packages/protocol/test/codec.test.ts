import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MQTT_PAYLOAD_BYTES, decodeMessage, encodeMessage } from '../src/index.ts';

describe('message codec', () => {
  it('round-trips a valid envelope with a protocol version and a unique id', () => {
    const a = encodeMessage('heartbeat', { uptimeSec: 12 });
    const b = encodeMessage('heartbeat', { uptimeSec: 12 });
    expect(a.message.v).toBe(1);
    expect(a.message.id).not.toBe(b.message.id);
    const d = decodeMessage('heartbeat', a.payload);
    expect(d.ok && d.message).toEqual(a.message);
  });

  it('refuses to encode a body its receiver would refuse', () => {
    expect(() => encodeMessage('heartbeat', { uptimeSec: -1 })).toThrow(/invalid heartbeat/);
  });

  it('answers each kind of bad payload with its own code', () => {
    const ok = JSON.parse(encodeMessage('heartbeat', { uptimeSec: 1 }).payload.toString());
    const cases: Array<[string | Buffer, string]> = [
      ['{', 'FLT_MSG_MALFORMED_JSON'],
      [Buffer.from([0xff, 0xfe, 0x00]), 'FLT_MSG_MALFORMED_JSON'],
      ['[1,2]', 'FLT_MSG_INVALID'],
      ['null', 'FLT_MSG_INVALID'],
      [JSON.stringify({ ...ok, v: 2 }), 'FLT_MSG_BAD_VERSION'],
      [JSON.stringify({ ...ok, type: 'reboot' }), 'FLT_MSG_UNKNOWN_TYPE'],
      [JSON.stringify({ ...ok, type: 'status' }), 'FLT_MSG_WRONG_CHANNEL'],
      [JSON.stringify({ ...ok, extra: 1 }), 'FLT_MSG_INVALID'],
      [JSON.stringify({ ...ok, body: { uptimeSec: 'x' } }), 'FLT_MSG_INVALID'],
      [JSON.stringify({ ...ok, id: 'a/b+c#d' }), 'FLT_MSG_INVALID'],
      ['{"a":' .repeat(40) + '1' + '}'.repeat(40), 'FLT_MSG_TOO_DEEP'],
      [Buffer.alloc(MAX_MQTT_PAYLOAD_BYTES + 1, 0x20), 'FLT_MSG_TOO_LARGE'],
    ];
    for (const [payload, code] of cases) {
      const d = decodeMessage('heartbeat', payload);
      expect(d.ok, String(payload).slice(0, 40)).toBe(false);
      if (!d.ok) expect(d.code, String(payload).slice(0, 40)).toBe(code);
    }
  });

  it('never throws on arbitrary bytes or arbitrary JSON (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expect(decodeMessage('events', bytes).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
        const d = decodeMessage('reported', JSON.stringify(v));
        expect(typeof d.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
