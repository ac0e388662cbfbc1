import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopic, encodeMessage, HARD_EXAMPLE_DIGEST_HEADER, HARD_EXAMPLE_EVENT, hardExampleInputPath, type HardExampleData } from '@flotilla/protocol';
import { loadConfig } from '../src/config/load.ts';
import { RetentionSweeper } from '../src/retention/retention-sweeper.ts';
import { ADMIN_TOKEN, auth, connectedDevice, startServer, type TestServer } from './helpers/server.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const admin = auth(ADMIN_TOKEN);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server whose clock the test moves (the time rows are received is what ages them). */
async function serverAt(retention: Record<string, number>) {
  const clock = { t: T0 };
  const t = await startServer({ retention: { sweepIntervalSec: 0, ...retention } }, { now: () => clock.t });
  cleanups.push(() => t.close());
  return { t, clock };
}

/** An enrolled device on MQTT that sends hard-example events (which are device events too) and uploads inputs. */
async function device(t: TestServer, id: string) {
  const { client: c, credential, acks } = await connectedDevice(t, id);
  cleanups.push(() => void c.end(true));
  let seq = 0;
  const basic = { authorization: `Basic ${Buffer.from(`${id}:${credential}`).toString('base64')}` };
  return {
    async example(requestId: string, input: Buffer): Promise<void> {
      const upload = await t.server.http.inject({
        method: 'PUT',
        url: hardExampleInputPath(requestId),
        headers: { ...basic, 'content-type': 'application/octet-stream', [HARD_EXAMPLE_DIGEST_HEADER]: sha(input) },
        payload: input,
      });
      expect(upload.statusCode).toBe(201);
      const data: HardExampleData = {
        model: 'digits',
        version: '1.0.0',
        answeredBy: 'edge-fallback',
        reason: { policy: 'input-size', value: input.byteLength, threshold: 1 },
        requestId,
        input: [{ name: 'input', datatype: 'UINT8', shape: [input.byteLength] }],
        inputOmittedBytes: input.byteLength,
        inputUpload: { bytes: input.byteLength, sha256: sha(input) },
        edgeOutput: [],
        at: T0,
      };
      const want = acks.length + 1;
      const e = encodeMessage('events', { kind: HARD_EXAMPLE_EVENT, seq: ++seq, data: data as unknown as Record<string, unknown> });
      await c.publishAsync(deviceTopic(id, 'events'), e.payload, { qos: 1 });
      await expect.poll(() => acks.length, { timeout: 5000 }).toBeGreaterThanOrEqual(want);
    },
  };
}

const count = (t: TestServer, table: string): number => (t.server.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
const createToken = async (t: TestServer, name: string) =>
  expect((await t.server.http.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { name, role: 'viewer' } })).statusCode).toBe(201);

describe('retention', () => {
  it('removes device events, hard examples with their inputs, and audit entries once each is older than its retention, and keeps the rest', async () => {
    const { t, clock } = await serverAt({ deviceEventsDays: 30, hardExamplesDays: 90, auditDays: 365 });
    const cam = await device(t, 'edge-cam');
    await cam.example('old', Buffer.from('an old input'));
    await createToken(t, 'old-token');
    const auditAtStart = count(t, 'audit_log');

    clock.t = T0 + 31 * DAY;
    await cam.example('newer', Buffer.from('a newer input'));
    await createToken(t, 'newer-token');
    expect(await t.server.retention.sweep()).toEqual({ deviceEvents: 1, hardExamples: 0, hardExampleInputs: 0, audit: 0 });
    const events = (await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-cam/events', headers: admin })).json() as { items: Array<{ receivedAt: number }> };
    expect(events.items.map((e) => e.receivedAt)).toEqual([T0 + 31 * DAY]);

    clock.t = T0 + 91 * DAY;
    expect(await t.server.retention.sweep()).toMatchObject({ hardExamples: 1, hardExampleInputs: 1 });
    const examples = (await t.server.http.inject({ method: 'GET', url: '/v1/hard-examples', headers: admin })).json() as { items: Array<{ requestId: string }> };
    expect(examples.items.map((e) => e.requestId)).toEqual(['newer']);
    expect(count(t, 'hard_example_inputs')).toBe(1);

    clock.t = T0 + 366 * DAY;
    const swept = await t.server.retention.sweep();
    expect(swept.audit).toBe(auditAtStart);
    // The sweep leaves its own entry, so removed audit history is never silent.
    const audit = (await t.server.http.inject({ method: 'GET', url: '/v1/audit?action=retention.prune', headers: admin })).json() as { items: Array<{ actor: string; details: Record<string, number> }> };
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]).toMatchObject({ actor: 'retention', details: { audit: auditAtStart, auditDays: 365 } });
    const metrics = (await t.server.http.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/flotilla_retention_pruned_rows_total\{table="device_events"\} 2/);
    expect(metrics).toMatch(/flotilla_retention_pruned_rows_total\{table="audit_log"\} \d+/);
  });

  it('keeps everything when a retention is 0', async () => {
    const { t, clock } = await serverAt({ deviceEventsDays: 0, hardExamplesDays: 0, auditDays: 0 });
    const cam = await device(t, 'edge-keep');
    await cam.example('kept', Buffer.from('kept input'));
    clock.t = T0 + 10_000 * DAY;
    expect(await t.server.retention.sweep()).toEqual({ deviceEvents: 0, hardExamples: 0, hardExampleInputs: 0, audit: 0 });
    expect(count(t, 'device_events')).toBe(1);
    expect(count(t, 'hard_examples')).toBe(1);
  });

  it('deletes in batches until nothing old is left, and a sweep already running is joined, not doubled', async () => {
    const { t, clock } = await serverAt({ auditDays: 1 });
    for (let i = 0; i < 25; i++) t.server.db.prepare("INSERT INTO audit_log (ts, actor, role, action) VALUES (?, 'x', 'admin', 'test.old')").run(T0 - i);
    clock.t = T0 + 2 * DAY;
    const before = count(t, 'audit_log');
    const sweeper = new RetentionSweeper({
      db: t.server.db,
      config: { deviceEventsDays: 0, hardExamplesDays: 0, auditDays: 1, sweepIntervalSec: 0 },
      now: () => clock.t,
      audit: { record: () => undefined } as never,
      batchRows: 4,
    });
    const [a, b] = await Promise.all([sweeper.sweep(), sweeper.sweep()]);
    expect(a).toBe(b);
    expect(a.audit).toBe(before);
    expect(count(t, 'audit_log')).toBe(0);
    await sweeper.close();
  });

  it('sweeps when the server starts listening, and then on its interval', async () => {
    const clock = { t: T0 };
    const dataDir = mkdtempSync(join(tmpdir(), 'flt-retention-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startServer({ retention: { sweepIntervalSec: 0 } }, { now: () => clock.t, dataDir });
    await createToken(first, 'before-restart');
    await first.close();
    // A restart two days later with a one-day audit retention: the entries go at listen().
    clock.t = T0 + 2 * DAY;
    const t = await startServer({ retention: { auditDays: 1, sweepIntervalSec: 3600 } }, { now: () => clock.t, dataDir });
    cleanups.push(() => t.close());
    await expect.poll(() => (t.server.db.prepare('SELECT COUNT(*) AS n FROM audit_log WHERE ts < ?').get(clock.t - DAY) as { n: number }).n).toBe(0);
    // The interval, on a sweeper with a fake one to drive.
    const ticks: Array<() => void> = [];
    const sweeper = new RetentionSweeper({
      db: t.server.db,
      config: { deviceEventsDays: 0, hardExamplesDays: 0, auditDays: 1, sweepIntervalSec: 3600 },
      now: () => clock.t,
      audit: { record: () => undefined } as never,
      timers: { setInterval: (fn) => ticks.push(fn), clearInterval: () => undefined },
    });
    cleanups.push(() => sweeper.close());
    const old = () => t.server.db.prepare("INSERT INTO audit_log (ts, actor, role, action) VALUES (?, 'x', 'admin', 'test.old')").run(clock.t - 2 * DAY);
    const olds = () => (t.server.db.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'test.old'").get() as { n: number }).n;
    old();
    sweeper.start();
    await expect.poll(olds).toBe(0);
    old();
    expect(ticks).toHaveLength(1);
    ticks[0]!();
    await expect.poll(olds).toBe(0);
  });

  it('takes its settings from the environment and refuses a negative retention', () => {
    const config = loadConfig({ env: { FLOTILLA_RETENTION_DEVICE_EVENTS_DAYS: '7', FLOTILLA_RETENTION_HARD_EXAMPLES_DAYS: '14', FLOTILLA_RETENTION_AUDIT_DAYS: '0' } });
    expect(config.retention).toEqual({ deviceEventsDays: 7, hardExamplesDays: 14, auditDays: 0, sweepIntervalSec: 3600 });
    expect(() => loadConfig({ env: { FLOTILLA_RETENTION_AUDIT_DAYS: '-1' } })).toThrow(/FLOTILLA_RETENTION_AUDIT_DAYS/);
    expect(() => loadConfig({ env: {}, overrides: { retention: { auditDays: -1 } } })).toThrow(/retention/);
  });
});
