import type { RolloutStateName } from '@flotilla/protocol';
import type { RolloutEngine, RolloutSummary } from '../rollouts/index.ts';

/** Where one client's events go: the route writes them as server-sent events. */
export interface StreamSink {
  send(event: 'progress' | 'end', data: unknown): void;
  comment(text: string): void;
  end(): void;
}

export interface HeartbeatTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realTimers: HeartbeatTimers = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** States a rollout never leaves: the stream says `end` and closes. */
export const FINAL_ROLLOUT_STATES: ReadonlySet<RolloutStateName> = new Set(['completed', 'cancelled', 'reverted', 'preempted']);

interface Watched {
  sinks: Set<StreamSink>;
  /** What was last sent, to send only real changes. */
  last: string | null;
}

/**
 * Fans rollout progress out to live clients. It listens to the engine's change notifications (after
 * each committed tick or command) and re-reads only the watched rollouts named there, once per
 * rollout whatever the number of clients, so nothing polls the database per client.
 */
export class RolloutStreamHub {
  readonly #engine: Pick<RolloutEngine, 'get' | 'onChange'>;
  readonly #timers: HeartbeatTimers;
  readonly #heartbeatMs: number;
  readonly #watched = new Map<string, Watched>();
  readonly #unsubscribe: () => void;
  #heartbeat: unknown = null;
  #closed = false;

  constructor(engine: Pick<RolloutEngine, 'get' | 'onChange'>, opts: { heartbeatMs?: number; timers?: HeartbeatTimers } = {}) {
    this.#engine = engine;
    this.#timers = opts.timers ?? realTimers;
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.#unsubscribe = engine.onChange((ids) => {
      for (const id of ids) if (this.#watched.has(id)) this.#refresh(id);
    });
  }

  /** Sends the current view at once, then every change; ends after a final state. Returns the detach function (safe twice). */
  open(id: string, sink: StreamSink): () => void {
    if (this.#closed) {
      sink.end();
      return () => {};
    }
    const view = this.#engine.get(id);
    let w = this.#watched.get(id);
    if (!w) {
      w = { sinks: new Set(), last: fingerprint(view) };
      this.#watched.set(id, w);
    }
    w.sinks.add(sink);
    sink.send('progress', view);
    if (FINAL_ROLLOUT_STATES.has(view.state)) {
      this.#finish(id, sink, view);
      return () => {};
    }
    this.#startHeartbeat();
    return () => this.#detach(id, sink);
  }

  /** Ends every stream; later `open` calls end at once. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const [id, w] of [...this.#watched]) for (const sink of [...w.sinks]) this.#endSink(id, sink);
    this.#stopHeartbeat();
  }

  /** Number of open streams (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const w of this.#watched.values()) n += w.sinks.size;
    return n;
  }

  #refresh(id: string): void {
    const w = this.#watched.get(id);
    if (!w) return;
    let view: RolloutSummary;
    try {
      view = this.#engine.get(id);
    } catch {
      // The rollout is gone (database closing): nothing more to show.
      for (const sink of [...w.sinks]) this.#endSink(id, sink);
      return;
    }
    const fp = fingerprint(view);
    if (fp === w.last) return;
    w.last = fp;
    for (const sink of [...w.sinks]) {
      sink.send('progress', view);
      if (FINAL_ROLLOUT_STATES.has(view.state)) this.#finish(id, sink, view);
    }
  }

  #finish(id: string, sink: StreamSink, view: RolloutSummary): void {
    sink.send('end', { id: view.id, state: view.state, reason: view.reason });
    this.#endSink(id, sink);
  }

  #endSink(id: string, sink: StreamSink): void {
    this.#detach(id, sink);
    sink.end();
  }

  #detach(id: string, sink: StreamSink): void {
    const w = this.#watched.get(id);
    if (!w || !w.sinks.delete(sink)) return;
    if (w.sinks.size === 0) this.#watched.delete(id);
    if (this.#watched.size === 0) this.#stopHeartbeat();
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== null) return;
    // A comment line keeps proxies and idle timeouts from closing a quiet stream.
    this.#heartbeat = this.#timers.setInterval(() => {
      for (const w of this.#watched.values()) for (const sink of w.sinks) sink.comment('heartbeat');
    }, this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat === null) return;
    this.#timers.clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }
}

/** What a viewer sees change: state, stage, reason and counts (not timestamps such as updatedAt). */
function fingerprint(v: RolloutSummary): string {
  return JSON.stringify([v.state, v.stage, v.reason, v.counts, v.funnel]);
}
