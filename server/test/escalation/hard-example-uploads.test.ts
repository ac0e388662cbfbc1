import { createHash } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  deviceTopic,
  encodeMessage,
  HARD_EXAMPLE_DIGEST_HEADER,
  HARD_EXAMPLE_EVENT,
  hardExampleInputPath,
  type ExampleTensor,
  type HardExampleData,
  type HardExampleView,
} from '@flotilla/protocol';
import { DEFAULT_MAX_INPUT_UPLOAD_BYTES } from '../../src/hard-examples/index.ts';
import { ADMIN_TOKEN, auth, connectedDevice, startServer, type TestServer } from '../helpers/server.ts';

const admin = auth(ADMIN_TOKEN);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const basic = (id: string, credential: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${credential}`).toString('base64')}` });

/** A 224×224×3 float image: 588 KiB, over what one MQTT event can carry. */
function image(seed: number): Buffer {
  const f = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 31 + seed) % 255) / 255);
  return Buffer.from(f.buffer);
}
const IMAGE_META: ExampleTensor = { name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224] };

function example(requestId: string, bytes: Buffer, overrides: Partial<HardExampleData> = {}): HardExampleData {
  return {
    model: 'resnet-edge',
    version: '1.0.0',
    answeredBy: 'edge-fallback',
    reason: { policy: 'input-size', value: bytes.byteLength, threshold: 100_000 },
    requestId,
    error: 'FLT_ESCALATION_BUDGET_EXCEEDED',
    input: [IMAGE_META],
    inputOmittedBytes: bytes.byteLength,
    inputUpload: { bytes: bytes.byteLength, sha256: sha(bytes) },
    edgeOutput: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 2], b64: Buffer.from(new Float32Array([0.6, 0.4]).buffer).toString('base64') }],
    at: 1_700_000_000_000,
    ...overrides,
  };
}

describe('hard-example inputs uploaded over HTTP', () => {
  let t: TestServer;
  const clients: MqttClient[] = [];
  beforeEach(async () => {
    t = await startServer();
    return async () => {
      for (const c of clients.splice(0)) c.end(true);
      await t.close();
    };
  });

  interface Device {
    id: string;
    headers: Record<string, string>;
    send(events: HardExampleData[]): Promise<void>;
    upload(requestId: string, body: Buffer, digest?: string): Promise<{ statusCode: number; json(): unknown }>;
  }

  async function device(id: string): Promise<Device> {
    const { client: c, credential, acks } = await connectedDevice(t, id);
    clients.push(c);
    let seq = 0;
    const headers = basic(id, credential);
    return {
      id,
      headers,
      async send(events) {
        const want = acks.length + events.length;
        for (const data of events) {
          const e = encodeMessage('events', { kind: HARD_EXAMPLE_EVENT, seq: ++seq, data: data as unknown as Record<string, unknown> });
          await c.publishAsync(deviceTopic(id, 'events'), e.payload, { qos: 1 });
        }
        const end = Date.now() + 5000;
        while (acks.length < want && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
        expect(acks.length).toBeGreaterThanOrEqual(want);
      },
      upload: (requestId, body, digest = sha(body)) =>
        t.server.http.inject({
          method: 'PUT',
          url: hardExampleInputPath(requestId),
          headers: { ...headers, 'content-type': 'application/octet-stream', [HARD_EXAMPLE_DIGEST_HEADER]: digest },
          payload: body,
        }),
    };
  }

  const exported = async (): Promise<HardExampleView[]> => (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples', headers: admin })).json().items as HardExampleView[];
  const inputOf = (v: HardExampleView | undefined): Buffer => Buffer.from(v?.input[0]?.b64 ?? '', 'base64');

  it('exports a large input whole, whether its upload arrives before or after its event, in JSON and JSON Lines', async () => {
    const d = await device('edge-cam');
    const before = image(1);
    const after = image(2);
    expect((await d.upload('req-before', before)).statusCode).toBe(201);
    await d.send([example('req-before', before), example('req-after', after)]);

    let items = await exported();
    expect(items.find((i) => i.requestId === 'req-after')).toMatchObject({ input: [IMAGE_META], inputOmittedBytes: after.byteLength, inputUpload: { arrived: false } });
    expect((await d.upload('req-after', after)).statusCode).toBe(201);

    items = await exported();
    expect(items).toHaveLength(2);
    for (const [id, bytes] of [['req-before', before], ['req-after', after]] as const) {
      const item = items.find((i) => i.requestId === id);
      expect(item).toMatchObject({ inputOmittedBytes: null, inputUpload: { bytes: bytes.byteLength, sha256: sha(bytes), arrived: true } });
      expect(item?.input[0]).toMatchObject(IMAGE_META);
      expect(inputOf(item).equals(bytes)).toBe(true);
    }
    const lines = (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples?format=jsonl', headers: admin })).body.trim().split('\n');
    expect(lines.map((l) => inputOf(JSON.parse(l) as HardExampleView).equals((JSON.parse(l) as HardExampleView).requestId === 'req-before' ? before : after))).toEqual([true, true]);
  });

  it('stores an upload once: the same bytes again are acknowledged without a second copy, other bytes are refused', async () => {
    const d = await device('edge-retry');
    const bytes = image(3);
    const first = await d.upload('req-1', bytes);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({ requestId: 'req-1', bytes: bytes.byteLength, sha256: sha(bytes), stored: true });
    const again = await d.upload('req-1', bytes);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ stored: false });
    const other = await d.upload('req-1', image(4));
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ code: 'FLT_HARD_EXAMPLE_UPLOAD_CONFLICT' });
    await d.send([example('req-1', bytes), example('req-1', bytes)]);
    const items = await exported();
    expect(items).toHaveLength(1);
    expect(inputOf(items[0]).equals(bytes)).toBe(true);
    expect(t.server.db.prepare('SELECT count(*) AS n FROM hard_example_inputs').get()).toEqual({ n: 1 });
  });

  it("never attaches a device's upload to another device's example, even under the same request id", async () => {
    const victim = await device('edge-victim');
    const attacker = await device('edge-attacker');
    const real = image(5);
    await victim.send([example('req-shared', real)]);
    // The attacker knows the request id and even the digest the event announced, but not the bytes.
    expect((await attacker.upload('req-shared', image(6))).statusCode).toBe(201);
    expect((await exported())[0]).toMatchObject({ deviceId: 'edge-victim', inputUpload: { arrived: false } });
    expect((await victim.upload('req-shared', real)).statusCode).toBe(201);
    const [item] = await exported();
    expect(inputOf(item).equals(real)).toBe(true);
  });

  it('refuses uploads without a device credential, with a wrong digest, a wrong length, or over the size limit, and stores nothing', async () => {
    const d = await device('edge-bad');
    const bytes = image(7);
    const put = (headers: Record<string, string>, payload: Buffer) =>
      t.server.http.inject({ method: 'PUT', url: hardExampleInputPath('req-bad'), headers: { 'content-type': 'application/octet-stream', ...headers }, payload });
    const noAuth = await put({ [HARD_EXAMPLE_DIGEST_HEADER]: sha(bytes) }, bytes);
    expect(noAuth.statusCode).toBe(401);
    const admins = await put({ ...admin, [HARD_EXAMPLE_DIGEST_HEADER]: sha(bytes) }, bytes);
    expect(admins.statusCode).toBe(401);
    const wrongDigest = await d.upload('req-bad', bytes, sha(image(8)));
    expect(wrongDigest.statusCode).toBe(400);
    expect(wrongDigest.json()).toMatchObject({ code: 'FLT_HARD_EXAMPLE_UPLOAD_INVALID' });
    const noDigest = await put(d.headers, bytes);
    expect(noDigest.json()).toMatchObject({ code: 'FLT_HARD_EXAMPLE_UPLOAD_INVALID' });
    const notRaw = await t.server.http.inject({ method: 'PUT', url: hardExampleInputPath('req-bad'), headers: { ...d.headers, 'content-type': 'application/json', [HARD_EXAMPLE_DIGEST_HEADER]: sha(bytes) }, payload: '{}' });
    expect(notRaw.statusCode).toBeGreaterThanOrEqual(400);
    const tooLarge = Buffer.alloc(DEFAULT_MAX_INPUT_UPLOAD_BYTES + 1);
    const over = await d.upload('req-bad', tooLarge);
    expect(over.statusCode).toBe(413);
    expect(over.json()).toMatchObject({ code: 'FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE' });
    expect(t.server.db.prepare('SELECT count(*) AS n FROM hard_example_inputs').get()).toEqual({ n: 0 });

    // An upload shorter than its event announced (the digest is its own) is stored but never joined.
    const short = bytes.subarray(0, bytes.byteLength - 4);
    expect((await d.upload('req-short', short)).statusCode).toBe(201);
    await d.send([example('req-short', bytes)]);
    expect((await exported())[0]).toMatchObject({ requestId: 'req-short', inputOmittedBytes: bytes.byteLength, inputUpload: { arrived: false } });
  });

  it('acknowledges an event whose tensors do not add up to its upload and keeps it out of the examples', async () => {
    const d = await device('edge-liar');
    const bytes = image(9);
    await d.send([example('req-liar', bytes, { input: [{ ...IMAGE_META, shape: [1, 3, 224, 223] }] })]);
    expect(await exported()).toEqual([]);
    const events = (await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-liar/events', headers: admin })).json() as { items: Array<{ data: Record<string, unknown> }> };
    expect(events.items[0]?.data).toMatchObject({ code: 'FLT_ESCALATION_EXAMPLE_INVALID' });
  });
});
