import mqtt, { type MqttClient } from 'mqtt';
import { beforeEach, describe, expect, it } from 'vitest';
import { decodeMessage, deviceTopic, encodeMessage, HARD_EXAMPLE_EVENT, type ExampleTensor, type HardExampleData, type HardExampleView } from '@flotilla/protocol';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';

const admin = auth(ADMIN_TOKEN);
const f32 = (values: number[]): string => Buffer.from(new Float32Array(values).buffer).toString('base64');
const probs = (values: number[]): ExampleTensor[] => [{ name: 'probabilities', datatype: 'FP32', shape: [1, values.length], b64: f32(values) }];

function example(overrides: Partial<HardExampleData> = {}): HardExampleData {
  return {
    model: 'mnist-edge',
    version: '1.0.0',
    cloudModel: 'mnist-cloud',
    answeredBy: 'edge-fallback',
    reason: { policy: 'max-prob', value: 0.61, threshold: 0.8 },
    requestId: 'req-late',
    error: 'FLT_ESCALATION_BUDGET_EXCEEDED',
    input: [{ name: 'input', datatype: 'FP32', shape: [1, 4], b64: f32([0.1, 0.2, 0.3, 0.4]) }],
    edgeOutput: probs([0.61, 0.39]),
    at: 1_700_000_000_000,
    ...overrides,
  };
}

const late = (overrides: Partial<HardExampleData> = {}): HardExampleData =>
  example({ late: true, cloudVersion: '3', cloudOutput: probs([0.05, 0.95]), cloudAnsweredAt: 1_700_000_000_450, ...overrides });

describe('late cloud answers', () => {
  let t: TestServer;
  let client: MqttClient | undefined;
  beforeEach(async () => {
    t = await startServer();
    return async () => {
      client?.end(true);
      client = undefined;
      await t.close();
    };
  });

  /** Connects a device and returns a sender that publishes events and waits for their acknowledgements. */
  async function device(id: string): Promise<(events: ReturnType<typeof encodeMessage>[]) => Promise<void>> {
    const credential = await enrollAccepted(t, id);
    const c = mqtt.connect(t.mqtt, { clientId: id, username: id, password: credential, clean: true, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    client = c;
    await c.subscribeAsync(deviceTopic(id, 'ack'), { qos: 1 });
    const acks: string[] = [];
    c.on('message', (topic, payload) => {
      const m = decodeMessage('ack', payload);
      if (topic.endsWith('/ack') && m.ok) acks.push(...m.message.body.ids);
    });
    return async (events) => {
      const want = acks.length + events.length;
      for (const e of events) await c.publishAsync(deviceTopic(id, 'events'), e.payload, { qos: 1 });
      const end = Date.now() + 5000;
      while (acks.length < want && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(acks.length).toBeGreaterThanOrEqual(want);
    };
  }

  const event = (seq: number, data: HardExampleData) => encodeMessage('events', { kind: HARD_EXAMPLE_EVENT, seq, data: data as unknown as Record<string, unknown> });
  const exported = async (): Promise<HardExampleView[]> => (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples', headers: admin })).json().items as HardExampleView[];

  it('attaches a late cloud answer to the stored example once: replays and a second answer change nothing', async () => {
    const send = await device('edge-late');
    const first = event(1, example());
    const answer = event(2, late());
    const otherAnswer = event(3, late({ cloudOutput: probs([0.9, 0.1]), cloudVersion: '4' }));
    await send([first, answer]);
    await send([first, answer, otherAnswer]); // resent after lost acks, and a second answer for the same request
    const items = await exported();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      requestId: 'req-late',
      answeredBy: 'edge-fallback',
      error: 'FLT_ESCALATION_BUDGET_EXCEEDED',
      edgeOutput: probs([0.61, 0.39]),
      cloudOutput: probs([0.05, 0.95]),
      cloudVersion: '3',
      cloudAnsweredAt: 1_700_000_000_450,
    });
    const events = (await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-late/events', headers: admin })).json() as { items: Array<{ id: string; data: Record<string, unknown> }> };
    expect(events.items.find((e) => e.id === answer.message.id)?.data).toMatchObject({ lateAnswerFor: items[0]!.seq });
    expect(events.items.find((e) => e.id === otherAnswer.message.id)?.data).toMatchObject({ duplicateOf: items[0]!.seq });
  });

  it('keeps a late answer that arrives before its example, and the example arriving after it adds nothing', async () => {
    const send = await device('edge-order');
    await send([event(2, late()), event(1, example())]);
    const items = await exported();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ requestId: 'req-late', cloudOutput: probs([0.05, 0.95]), input: example().input });
  });

  it('keeps examples of different requests apart, and one without a late answer has no cloud output', async () => {
    const send = await device('edge-two');
    await send([event(1, example()), event(2, example({ requestId: 'req-other' })), event(3, late())]);
    const items = await exported();
    expect(items.map((i) => [i.requestId, i.cloudOutput === null])).toEqual([
      ['req-late', false],
      ['req-other', true],
    ]);
    expect(items[1]?.cloudAnsweredAt).toBeNull();
  });
});
