import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startServer, tokenFor, type TestServer } from '../helpers/server.ts';
import { publishStubReleases } from './stub-release.ts';
import { simulatedFleet } from './simulated-device.ts';

interface SseEvent {
  event: string;
  data: string;
}

/** Reads a server-sent event stream with a plain fetch reader: the events in order, and heartbeat comments counted apart. */
async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

interface View {
  state: string;
  stage: number;
  counts: { succeeded: number };
  funnel: Array<{ size: number; counts: { succeeded: number } }>;
}

describe('GET /v1/rollouts/:id/stream', () => {
  let t: TestServer;
  let operator: string;
  let viewer: string;
  let clients: MqttClient[] = [];

  beforeAll(async () => {
    t = await startServer();
    operator = await tokenFor(t, 'operator');
    viewer = await tokenFor(t, 'viewer');
    await publishStubReleases(t, 'digits', ['2.0.0']);
    clients = await simulatedFleet(t, ['cam-01', 'cam-02', 'cam-03', 'cam-04'], { site: 'lyon' });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t?.close();
  });

  const stream = (id: string, headers: Record<string, string> = auth(viewer)) => fetch(`${t.http}/v1/rollouts/${id}/stream`, { headers });

  it('answers 401 without a token and 404 for an unknown rollout', async () => {
    const anonymous = await stream('lyon-digits-2', {});
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ code: 'FLT_UNAUTHENTICATED' });
    const missing = await stream('ro-missing');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'FLT_ROLLOUT_NOT_FOUND' });
  });

  it('sends progress with the per-stage funnel in order as devices report, then end, and closes', async () => {
    const spec = { id: 'lyon-digits-2', target: { labels: { site: 'lyon' } }, model: 'digits', version: '2.0.0', stages: [{ count: 1 }, { percent: 100, requireApproval: true }] };
    const created = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec });
    expect(created.statusCode).toBe(201);

    const res = await stream('lyon-digits-2');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const views: View[] = [];
    let end: unknown = null;
    let approved = false;
    for await (const e of readEvents(res.body!)) {
      if (e.event === 'end') {
        end = JSON.parse(e.data);
        continue;
      }
      expect(e.event).toBe('progress');
      const view = JSON.parse(e.data) as View;
      views.push(view);
      if (view.state === 'awaitingApproval' && !approved) {
        approved = true;
        const ok = await t.server.http.inject({ method: 'POST', url: '/v1/rollouts/lyon-digits-2/approve', headers: auth(operator) });
        expect(ok.statusCode).toBe(200);
      }
    }
    // The loop ended because the server closed the stream after `end`.
    expect(end).toEqual({ id: 'lyon-digits-2', state: 'completed', reason: null });
    expect(views.at(-1)).toMatchObject({ state: 'completed', stage: 1, counts: { succeeded: 4 } });
    expect(views.at(-1)!.funnel.map((f) => [f.size, f.counts.succeeded])).toEqual([
      [1, 1],
      [3, 3],
    ]);
    expect(views.map((v) => v.state)).toContain('awaitingApproval');
    // Progress only moves forward, and every event shows something new.
    for (let i = 1; i < views.length; i++) {
      expect(views[i]!.stage).toBeGreaterThanOrEqual(views[i - 1]!.stage);
      expect(views[i]!.counts.succeeded).toBeGreaterThanOrEqual(views[i - 1]!.counts.succeeded);
      expect(JSON.stringify(views[i])).not.toBe(JSON.stringify(views[i - 1]));
    }
  });

  it('sends the final view and end at once for a finished rollout', async () => {
    const res = await stream('lyon-digits-2');
    const events: string[] = [];
    for await (const e of readEvents(res.body!)) events.push(e.event);
    expect(events).toEqual(['progress', 'end']);
  });

  it('ends open streams when the server closes', async () => {
    const own = await startServer();
    await publishStubReleases(own, 'digits', ['2.0.0']);
    const fleet = await simulatedFleet(own, ['cam-09'], { site: 'paris' });
    try {
      const op = await tokenFor(own, 'operator');
      const spec = { id: 'paris-digits-2', target: { labels: { site: 'paris' } }, model: 'digits', version: '2.0.0', stages: [{ count: 1, requireApproval: true }] };
      expect((await own.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(op), payload: spec })).statusCode).toBe(201);
      const paused = await own.server.http.inject({ method: 'POST', url: '/v1/rollouts/paris-digits-2/pause', headers: auth(op) });
      expect(paused.json()).toMatchObject({ state: 'paused' });
      const res = await fetch(`${own.http}/v1/rollouts/paris-digits-2/stream`, { headers: auth(op) });
      const events: string[] = [];
      for await (const e of readEvents(res.body!)) {
        events.push(e.event);
        if (events.length === 1) void own.close();
      }
      expect(events).toEqual(['progress']);
    } finally {
      for (const c of fleet) c.end(true);
      await own.close();
    }
  });
});
