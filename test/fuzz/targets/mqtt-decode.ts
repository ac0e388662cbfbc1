import fc from 'fast-check';
import { CHANNEL_MESSAGES, DOWN_CHANNELS, MAX_MQTT_PAYLOAD_BYTES, UP_CHANNELS, decodeMessage, encodeMessage, type Channel } from '@flotilla/protocol';
import { channelPayload } from '../arbitraries/envelopes.ts';
import { FuzzProbe, checkTarget, type RunOptions, type TargetReport } from '../harness/fuzz-report.ts';

/** Every refusal decodeMessage may answer with (docs/mqtt.md, docs/errors.md). */
export const MESSAGE_REFUSALS = new Set(['FLT_MSG_TOO_LARGE', 'FLT_MSG_MALFORMED_JSON', 'FLT_MSG_TOO_DEEP', 'FLT_MSG_BAD_VERSION', 'FLT_MSG_UNKNOWN_TYPE', 'FLT_MSG_WRONG_CHANNEL', 'FLT_MSG_INVALID']);

const CHANNELS: readonly Channel[] = [...UP_CHANNELS, ...DOWN_CHANNELS];

/**
 * The codec both sides run on every MQTT payload (server ingest for up channels, agent for down
 * channels), called directly: it must never throw, refuse only with a documented code, and accept
 * only what the encoder would also produce.
 */
export function fuzzMqttDecode(opts: RunOptions): Promise<TargetReport> {
  const probe = new FuzzProbe();
  const input = fc.constantFrom(...CHANNELS).chain((channel) => fc.tuple(fc.constant(channel), channelPayload(channel, { oversize: true }), fc.boolean()));
  const property = fc.property(input, ([channel, payload, asString]) => {
    const size = payload.bytes.length;
    const result = decodeMessage(channel, asString ? payload.bytes.toString('utf8') : payload.bytes);
    if (!result.ok) {
      probe.tally(result.code);
      if (!MESSAGE_REFUSALS.has(result.code)) throw new Error(`undocumented refusal ${result.code}`);
      if (size > MAX_MQTT_PAYLOAD_BYTES && !asString && result.code !== 'FLT_MSG_TOO_LARGE') throw new Error(`${size} bytes refused as ${result.code}`);
      return true;
    }
    probe.tally('accepted');
    if (size > MAX_MQTT_PAYLOAD_BYTES) throw new Error(`accepted ${size} bytes`);
    const { message } = result;
    if (message.type !== CHANNEL_MESSAGES[channel].type) throw new Error(`accepted ${message.type} on ${channel}`);
    // What the decoder accepts, the encoder must be willing to send, and it must decode the same.
    const again = decodeMessage(channel, encodeMessage(channel, message.body as never, { id: message.id, ts: message.ts }).payload);
    if (!again.ok || JSON.stringify(again.message) !== JSON.stringify(message)) throw new Error('re-encoded message does not decode to itself');
    return true;
  });
  return checkTarget('mqtt-decode', probe, property, opts);
}
