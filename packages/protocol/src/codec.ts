import { randomUUID } from 'node:crypto';
import { Compile } from 'typebox/compile';
import type { Validator } from 'typebox/compile';
import type { TSchema } from 'typebox';
import { CHANNEL_MESSAGES, type ChannelMessageMap } from './messages/envelopes.ts';
import type { Channel } from './topics.ts';
import { MAX_JSON_DEPTH, MAX_MQTT_PAYLOAD_BYTES, PROTOCOL_VERSION } from './version.ts';
import type { ErrorCode } from './errors.ts';

export type DecodeResult<C extends Channel> =
  | { ok: true; message: ChannelMessageMap[C] }
  | { ok: false; code: ErrorCode; reason: string };

const validators = new Map<Channel, Validator>();
function validatorFor(channel: Channel): Validator {
  let v = validators.get(channel);
  if (!v) {
    v = Compile(CHANNEL_MESSAGES[channel].schema as TSchema);
    validators.set(channel, v);
  }
  return v;
}

/** Depth of a parsed JSON value, computed without recursion so hostile input cannot blow the stack. */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * Decodes and validates one MQTT payload for a channel. Never throws: every failure comes back
 * with a stable code, so a handler can log, count and drop it without touching any state.
 */
export function decodeMessage<C extends Channel>(channel: C, payload: Uint8Array | string): DecodeResult<C> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_MQTT_PAYLOAD_BYTES) return { ok: false, code: 'FLT_MSG_TOO_LARGE', reason: `${size} bytes` };
  let parsed: unknown;
  try {
    const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'FLT_MSG_MALFORMED_JSON', reason: (err as Error).message };
  }
  if (jsonDepth(parsed, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    return { ok: false, code: 'FLT_MSG_TOO_DEEP', reason: `deeper than ${MAX_JSON_DEPTH}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, code: 'FLT_MSG_INVALID', reason: 'payload is not a JSON object' };
  }
  const env = parsed as Record<string, unknown>;
  if (env.v !== PROTOCOL_VERSION) {
    return { ok: false, code: 'FLT_MSG_BAD_VERSION', reason: `v=${JSON.stringify(env.v)}, expected ${PROTOCOL_VERSION}` };
  }
  const expected = CHANNEL_MESSAGES[channel].type;
  if (env.type !== expected) {
    const known = Object.values(CHANNEL_MESSAGES).some((m) => m.type === env.type);
    return known
      ? { ok: false, code: 'FLT_MSG_WRONG_CHANNEL', reason: `${String(env.type)} on ${channel}` }
      : { ok: false, code: 'FLT_MSG_UNKNOWN_TYPE', reason: `type=${JSON.stringify(env.type)}` };
  }
  const validator = validatorFor(channel);
  if (!validator.Check(parsed)) {
    const first = validator.Errors(parsed)[0];
    const where = first ? `${first.instancePath || '/'}: ${first.message}` : 'schema mismatch';
    return { ok: false, code: 'FLT_MSG_INVALID', reason: where };
  }
  return { ok: true, message: parsed as ChannelMessageMap[C] };
}

export function newMessageId(): string {
  return randomUUID();
}

/** Builds an envelope for a channel; validates it so a sender cannot emit what a receiver would refuse. */
export function encodeMessage<C extends Channel>(
  channel: C,
  body: ChannelMessageMap[C]['body'],
  opts: { id?: string; ts?: number } = {},
): { message: ChannelMessageMap[C]; payload: Buffer } {
  const message = {
    v: PROTOCOL_VERSION,
    type: CHANNEL_MESSAGES[channel].type,
    id: opts.id ?? newMessageId(),
    ts: opts.ts ?? Date.now(),
    body,
  } as ChannelMessageMap[C];
  const validator = validatorFor(channel);
  if (!validator.Check(message)) {
    const first = validator.Errors(message)[0];
    throw new TypeError(`refusing to encode invalid ${channel} message: ${first?.instancePath ?? ''} ${first?.message ?? ''}`);
  }
  return { message, payload: Buffer.from(JSON.stringify(message)) };
}
