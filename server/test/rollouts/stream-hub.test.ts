import { describe, expect, it } from 'vitest';
import { RolloutStreamHub, type HeartbeatTimers, type StreamSink } from '../../src/http/rollout-stream.ts';
import type { RolloutSummary } from '../../src/rollouts/index.ts';

/** A stand-in engine: a mutable view and the change listener the hub registers. */
function fakeEngine(view: Partial<RolloutSummary>) {
  let listener: ((ids: ReadonlySet<string>) => void) | null = null;
  let reads = 0;
  return {
    view,
    get reads() {
      return reads;
    },
    get: () => {
      reads++;
      return { ...view } as RolloutSummary;
    },
    onChange: (l: (ids: ReadonlySet<string>) => void) => {
      listener = l;
      return () => {
        listener = null;
      };
    },
    changed: (...ids: string[]) => listener?.(new Set(ids)),
  };
}

function recordingSink() {
  const out: string[] = [];
  const sink: StreamSink = { send: (e, d) => out.push(`${e}:${(d as { state: string }).state}`), comment: (c) => out.push(`:${c}`), end: () => out.push('closed') };
  return { out, sink };
}

function fakeTimers() {
  const fns = new Map<number, () => void>();
  let next = 1;
  const timers: HeartbeatTimers = {
    setInterval: (fn) => {
      fns.set(next, fn);
      return next++;
    },
    clearInterval: (h) => fns.delete(h as number),
  };
  return { timers, fire: () => [...fns.values()].forEach((f) => f()), get active() {
    return fns.size;
  } };
}

describe('RolloutStreamHub', () => {
  it('sends only changes, reads each changed rollout once for all clients, and ends after a final state', () => {
    const engine = fakeEngine({ id: 'r1', state: 'running', stage: 0, reason: null, counts: { succeeded: 0 } as RolloutSummary['counts'] });
    const t = fakeTimers();
    const hub = new RolloutStreamHub(engine, { timers: t.timers });
    const a = recordingSink();
    const b = recordingSink();
    hub.open('r1', a.sink);
    hub.open('r1', b.sink);
    const readsBefore = engine.reads;
    engine.changed('r1', 'other');
    expect(engine.reads).toBe(readsBefore + 1);
    expect(a.out).toEqual(['progress:running']);
    engine.view.stage = 1;
    engine.changed('r1');
    t.fire();
    engine.view.state = 'completed';
    engine.changed('r1');
    for (const s of [a, b]) expect(s.out).toEqual(['progress:running', 'progress:running', ':heartbeat', 'progress:completed', 'end:completed', 'closed']);
    expect(hub.size).toBe(0);
    expect(t.active).toBe(0);
  });

  it('stops the heartbeat when the last client leaves and ends every stream on close', () => {
    const engine = fakeEngine({ id: 'r1', state: 'paused', stage: 0, reason: null });
    const t = fakeTimers();
    const hub = new RolloutStreamHub(engine, { timers: t.timers });
    const a = recordingSink();
    const detach = hub.open('r1', a.sink);
    expect(t.active).toBe(1);
    detach();
    detach();
    expect(t.active).toBe(0);
    const b = recordingSink();
    hub.open('r1', b.sink);
    hub.close();
    hub.close();
    expect(b.out).toEqual(['progress:paused', 'closed']);
    const late = recordingSink();
    hub.open('r1', late.sink);
    expect(late.out).toEqual(['closed']);
  });
});
