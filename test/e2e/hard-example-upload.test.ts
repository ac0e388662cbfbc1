import { readdirSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMessage, deviceTopic, type HardExampleView } from '@flotilla/protocol';
import { InputSpool, InputUploader } from '../../agent/src/escalation/index.ts';
import { OutboxSender } from '../../agent/src/outbox/sender.ts';
import { systemTimers } from '../../agent/src/runtime/timers.ts';
import { input, makeEscalator, openTestOutbox, settle } from '../../agent/test/escalation/fixtures.ts';
import { refusedUrl } from '../../agent/test/escalation/kserve-test-pool.ts';
import { tempDir } from '../../agent/test/helpers/temp-dir.ts';
import { DEFAULT_MAX_INPUT_UPLOAD_BYTES } from '../../server/src/hard-examples/index.ts';
import { ADMIN_TOKEN, auth, enrollAccepted, startServer, type TestServer } from '../../server/test/helpers/server.ts';

const admin = auth(ADMIN_TOKEN);
const logger = pino({ level: 'silent' });
/** A 3×224×224 float image, flattened: 588 KiB, far over what one MQTT event carries. */
const IMAGE_WIDTH = 3 * 224 * 224;

async function until(ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A large hard example from the agent's escalator to the server's export, with real parts: the
 * escalator spools the input and enqueues the event in the durable outbox, the outbox sender
 * publishes it over MQTT, the uploader PUTs the bytes over HTTP with the device credential.
 */
describe('hard examples larger than one MQTT event reach the server whole', () => {
  let t: TestServer;
  let client: MqttClient | undefined;
  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    client?.end(true);
    client = undefined;
    await t.close();
  });

  /** Connects the device over MQTT and drains the outbox into it, deleting what the server acknowledges. */
  async function connectSender(deviceId: string, credential: string, outbox: ReturnType<typeof openTestOutbox>): Promise<OutboxSender> {
    const c = mqtt.connect(t.mqtt, { clientId: deviceId, username: deviceId, password: credential, clean: true, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    client = c;
    const sender = new OutboxSender({ outbox, window: 8, ackTimeoutMs: 2000, timers: systemTimers, logger });
    await c.subscribeAsync(deviceTopic(deviceId, 'ack'), { qos: 1 });
    c.on('message', (topic, payload) => {
      const m = decodeMessage('ack', payload);
      if (topic.endsWith('/ack') && m.ok) sender.handleAck(m.message.body.ids);
    });
    sender.online(async (payload) => {
      await c.publishAsync(deviceTopic(deviceId, 'events'), payload, { qos: 1 });
    });
    return sender;
  }

  const exported = async (): Promise<HardExampleView[]> => (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples', headers: admin })).json().items as HardExampleView[];
  const storedInputs = (): unknown => t.server.db.prepare('SELECT count(*) AS n FROM hard_example_inputs').get();

  it('keeps the input through a failed upload and a restart, then uploads it once and exports it with its event', async () => {
    const credential = await enrollAccepted(t, 'edge-cam');
    const spoolDir = tempDir('flotilla-input-spool-');
    const outbox = openTestOutbox();
    const who = () => ({ deviceId: 'edge-cam', credential });

    // First life: the server cannot be reached, so the upload fails and the input stays spooled.
    const spool = InputSpool.open(spoolDir);
    const offline = new InputUploader({ spool, serverUrl: await refusedUrl(), credential: who, logger, retryMs: 60_000 });
    const { escalator } = makeEscalator({ mode: 'always-cloud', budgetMs: 200, keepExamples: 'all' }, [{ pool: 'gone', region: 'lab', endpoints: [await refusedUrl()] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o), largeInputs: { spool, uploader: offline }, logger },
    });
    const image = input(0.9, IMAGE_WIDTH);
    const answer = await escalator.infer('digits', image);
    expect(answer.answeredBy).toBe('edge-fallback');
    await settle();
    await offline.kick();
    expect(offline.stats()).toMatchObject({ uploaded: 0, failures: 1, pending: 1 });
    const [entry] = outbox.all();
    expect(entry?.data).toMatchObject({ requestId: answer.requestId, inputOmittedBytes: IMAGE_WIDTH * 4, inputUpload: { bytes: IMAGE_WIDTH * 4 }, input: [{ name: 'input', datatype: 'FP32', shape: [1, IMAGE_WIDTH] }] });
    expect(entry!.bytes).toBeLessThan(8 * 1024);
    escalator.close();
    await offline.close();

    // Second life: the spool is found again on disk; the event goes over MQTT, the input over HTTP.
    const reopened = InputSpool.open(spoolDir);
    expect(reopened.pending()).toEqual([answer.requestId]);
    const uploader = new InputUploader({ spool: reopened, serverUrl: t.http, credential: who, logger });
    const sender = await connectSender('edge-cam', credential, outbox);
    await uploader.kick(); // what the daemon does on reconnect
    await until(() => outbox.depth().entries === 0);
    expect(uploader.stats()).toMatchObject({ uploaded: 1, pending: 0 });
    expect(readdirSync(spoolDir)).toEqual([]);

    const [item, ...rest] = await exported();
    expect(rest).toEqual([]);
    expect(item).toMatchObject({ deviceId: 'edge-cam', requestId: answer.requestId, answeredBy: 'edge-fallback', inputOmittedBytes: null, inputUpload: { arrived: true } });
    const bytes = Buffer.from(item!.input[0]!.b64!, 'base64');
    const sent = image[0]!.data as Float32Array;
    expect(bytes.equals(Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength))).toBe(true);

    // A replay of both (lost acknowledgements, a re-sent upload) stores nothing twice.
    reopened.put(answer.requestId!, Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength));
    await uploader.kick();
    expect(uploader.stats()).toMatchObject({ uploaded: 2, refused: 0 });
    expect(storedInputs()).toEqual({ n: 1 });
    expect(await exported()).toHaveLength(1);
    sender.close();
    await uploader.close();
    await uploader.close();
  });

  it('drops an input the server refuses for good (over its size limit) instead of retrying it forever', async () => {
    const credential = await enrollAccepted(t, 'edge-big');
    const spool = InputSpool.open(tempDir('flotilla-input-spool-'));
    const uploader = new InputUploader({ spool, serverUrl: t.http, credential: () => ({ deviceId: 'edge-big', credential }), logger });
    spool.put('req-huge', Buffer.alloc(DEFAULT_MAX_INPUT_UPLOAD_BYTES + 1));
    await uploader.kick();
    expect(uploader.stats()).toMatchObject({ uploaded: 0, refused: 1, pending: 0 });
    expect(storedInputs()).toEqual({ n: 0 });
    await uploader.close();
  });

  it('does not upload for a device whose credential the server refuses, and retries later', async () => {
    await enrollAccepted(t, 'edge-wrong');
    const spool = InputSpool.open(tempDir('flotilla-input-spool-'));
    const uploader = new InputUploader({ spool, serverUrl: t.http, credential: () => ({ deviceId: 'edge-wrong', credential: 'not-the-credential' }), logger, retryMs: 60_000 });
    spool.put('req-1', Buffer.alloc(1024, 1));
    await uploader.kick();
    expect(uploader.stats()).toMatchObject({ uploaded: 0, refused: 0, failures: 1, pending: 1 });
    expect(storedInputs()).toEqual({ n: 0 });
    await uploader.close();
  });
});
