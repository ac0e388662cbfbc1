import fc from 'fast-check';
import { HARD_EXAMPLE_EVENT, MAX_MQTT_PAYLOAD_BYTES, PROTOCOL_VERSION, type Channel } from '@flotilla/protocol';
import { applyMutation, damageBytes, mutation, textDamage, type Json } from './mutation.ts';

/** Valid message bodies per channel, written from the protocol schemas (packages/protocol/src/messages). */
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
const version = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.+_-]{0,12}$/);
const messageId = fc.stringMatching(/^[A-Za-z0-9_-]{8,40}$/);
const timestamp = fc.integer({ min: 0, max: 8.64e15 });
const bytes = fc.maxSafeNat();
const shortText = fc.string({ maxLength: 40 });

const runState = fc.constantFrom('pending', 'downloading', 'verified', 'installed', 'activated', 'healthy', 'failed');
const provider = fc.constantFrom('tensorrt', 'cuda', 'cpu', 'triton');

const exampleTensor = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 16 }),
    datatype: fc.constantFrom('FP32', 'INT8', 'BYTES', 'UINT8', 'FP16'),
    shape: fc.array(fc.nat({ max: 64 }), { maxLength: 4 }),
    b64: fc.base64String({ maxLength: 64 }),
    strings: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  },
  { requiredKeys: ['name', 'datatype', 'shape'] },
);

/** The data of a hard-example event, which the server stores in its own table. */
const hardExampleData = fc.record(
  {
    model: name,
    version,
    cloudModel: name,
    answeredBy: fc.constantFrom('edge', 'cloud', 'edge-fallback'),
    reason: fc.record({ policy: fc.string({ minLength: 1, maxLength: 32 }), value: fc.double({ noNaN: true, noDefaultInfinity: true }), threshold: fc.double({ min: 0, max: 1, noNaN: true }) }, { requiredKeys: ['policy'] }),
    requestId: fc.string({ minLength: 1, maxLength: 64 }),
    input: fc.array(exampleTensor, { maxLength: 3 }),
    inputOmittedBytes: fc.nat(),
    edgeOutput: fc.array(exampleTensor, { maxLength: 3 }),
    at: fc.nat(),
  },
  { requiredKeys: ['model', 'version', 'answeredBy', 'reason', 'requestId', 'input', 'edgeOutput', 'at'] },
);

const bodies: Record<Channel, fc.Arbitrary<Json>> = {
  status: fc.record({ state: fc.constantFrom('online', 'offline') }),
  heartbeat: fc.record(
    {
      uptimeSec: fc.double({ min: 0, max: 1e9, noNaN: true }),
      loadAvg1: fc.double({ min: 0, max: 512, noNaN: true }),
      memFreeBytes: bytes,
      diskFreeBytes: bytes,
      outboxDepth: fc.nat(),
    },
    { requiredKeys: ['uptimeSec'] },
  ),
  inventory: fc.record(
    {
      arch: fc.constantFrom('x64', 'arm64'),
      os: fc.record({ platform: fc.constant('linux'), release: shortText }),
      cpu: fc.record({ model: shortText, cores: fc.integer({ min: 1, max: 4096 }) }),
      memoryBytes: bytes,
      disk: fc.record({ path: shortText, totalBytes: bytes, freeBytes: bytes }),
      gpu: fc.option(fc.record({ name: shortText, computeCapability: fc.stringMatching(/^[0-9]{1,2}\.[0-9]$/) })),
      executionProviders: fc.uniqueArray(provider, { maxLength: 4 }),
      agentVersion: fc.constant('0.1.0'),
    },
    { requiredKeys: ['arch', 'os', 'cpu', 'memoryBytes', 'disk', 'gpu', 'executionProviders', 'agentVersion'] },
  ) as fc.Arbitrary<Json>,
  reported: fc.record({
    appliedGeneration: fc.maxSafeNat(),
    models: fc.dictionary(name, fc.record({ version: fc.option(version), state: runState, provider: fc.constant('cpu') }, { requiredKeys: ['version', 'state'] }), { maxKeys: 3 }),
  }) as fc.Arbitrary<Json>,
  events: fc.oneof(
    fc.record({
      kind: fc.stringMatching(/^[a-z][a-z0-9_.]{0,20}$/),
      seq: fc.maxSafeNat(),
      data: fc.dictionary(fc.string({ maxLength: 64 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
    }),
    fc.record({ kind: fc.constant(HARD_EXAMPLE_EVENT), seq: fc.maxSafeNat(), data: hardExampleData }),
  ) as fc.Arbitrary<Json>,
  desired: fc.record({ generation: fc.maxSafeNat(), models: fc.dictionary(name, fc.record({ version }), { maxKeys: 3 }) }) as fc.Arbitrary<Json>,
  ack: fc.record({ ids: fc.array(messageId, { minLength: 1, maxLength: 5 }) }),
  cmd: fc.record({ command: fc.constantFrom('reenroll', 'report') }),
};

const TYPE_OF: Record<Channel, string> = {
  status: 'status',
  heartbeat: 'heartbeat',
  inventory: 'inventory',
  reported: 'reported',
  events: 'event',
  desired: 'desired',
  ack: 'ack',
  cmd: 'cmd',
};

/** A valid envelope for a channel (valid as far as the schema goes; the generators stay inside it). */
export function validEnvelope(channel: Channel): fc.Arbitrary<Json> {
  return fc.record({ v: fc.constant(PROTOCOL_VERSION), type: fc.constant(TYPE_OF[channel]), id: messageId, ts: timestamp, body: bodies[channel] });
}

/** One MQTT payload and how it was made; prints short in a counterexample. */
export interface Payload {
  kind: 'valid' | 'mutated' | 'damaged-text' | 'random-bytes' | 'json-value' | 'deep-json' | 'oversize';
  bytes: Buffer;
}

function payload(kind: Payload['kind'], bytes: Buffer): Payload {
  const p: Payload = { kind, bytes };
  Object.defineProperty(p, fc.toStringMethod, {
    value: () => `${kind}(${bytes.length} B): ${JSON.stringify(bytes.subarray(0, 600).toString('utf8'))}`,
  });
  return p;
}

const encode = (doc: Json) => Buffer.from(JSON.stringify(doc));

/**
 * Nesting far past MAX_JSON_DEPTH, as a bare value or inside an otherwise valid envelope, balanced
 * or left open: the depth check must answer before any recursive code sees it.
 */
export function deepJson(channel: Channel): fc.Arbitrary<Payload> {
  return fc
    .record({
      depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 64, max: 150_000 })),
      shape: fc.constantFrom('array', 'object', 'mixed'),
      inEnvelope: fc.boolean(),
      balanced: fc.boolean(),
      envelope: validEnvelope(channel),
    })
    .map(({ depth, shape, inEnvelope, balanced, envelope }) => {
      const open = shape === 'array' ? '[' : shape === 'object' ? '{"a":' : '[{"a":';
      const close = shape === 'array' ? ']' : shape === 'object' ? '}' : '}]';
      // Capped so the text stays under the payload limit (oversize payloads have their own generator).
      const fit = Math.floor((MAX_MQTT_PAYLOAD_BYTES - 4096) / (open.length + close.length));
      const levels = Math.min(fit, shape === 'mixed' ? Math.ceil(depth / 2) : depth);
      const nested = open.repeat(levels) + '0' + (balanced ? close.repeat(levels) : '');
      if (!inEnvelope) return payload('deep-json', Buffer.from(nested));
      const text = JSON.stringify({ ...(envelope as Record<string, Json>), body: { nested: '@@' } }).replace('"@@"', nested);
      return payload('deep-json', Buffer.from(text));
    });
}

/** Just over the payload limit: a padded valid envelope, or noise. */
export function oversize(channel: Channel): fc.Arbitrary<Payload> {
  return fc.record({ extra: fc.integer({ min: 1, max: 4096 }), asEnvelope: fc.boolean(), envelope: validEnvelope(channel) }).map(({ extra, asEnvelope, envelope }) => {
    if (!asEnvelope) return payload('oversize', Buffer.alloc(MAX_MQTT_PAYLOAD_BYTES + extra, 0x7b));
    const base = JSON.stringify(envelope);
    const pad = Math.max(0, MAX_MQTT_PAYLOAD_BYTES + extra - base.length - 12);
    return payload('oversize', encode({ ...(envelope as Record<string, Json>), pad: 'p'.repeat(pad) }));
  });
}

export interface PayloadMix {
  /** Include payloads over the size limit (they close an MQTT connection). */
  oversize?: boolean;
}

/** Every kind of payload for one channel, weighted towards mutated valid envelopes. */
export function channelPayload(channel: Channel, mix: PayloadMix = {}): fc.Arbitrary<Payload> {
  const env = validEnvelope(channel);
  const arbs: Array<fc.WeightedArbitrary<Payload>> = [
    { weight: 3, arbitrary: env.map((e) => payload('valid', encode(e))) },
    { weight: 8, arbitrary: fc.tuple(env, mutation).map(([e, m]) => payload('mutated', encode(applyMutation(e, m)))) },
    { weight: 2, arbitrary: fc.tuple(env, fc.array(mutation, { minLength: 2, maxLength: 5 })).map(([e, ms]) => payload('mutated', encode(ms.reduce(applyMutation, e)))) },
    { weight: 3, arbitrary: fc.tuple(env, textDamage).map(([e, d]) => payload('damaged-text', damageBytes(encode(e), d))) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => payload('random-bytes', Buffer.from(b))) },
    { weight: 2, arbitrary: (fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json>).map((j) => payload('json-value', encode(j))) },
    { weight: 2, arbitrary: deepJson(channel) },
  ];
  if (mix.oversize) arbs.push({ weight: 1, arbitrary: oversize(channel) });
  return fc.oneof(...arbs);
}
