import { Agent, request } from 'undici';
import type { EvalSet } from '@flotilla/modelkit';
import { pause } from '../wait.ts';
import { emptyTraffic, type AnsweredBy, type DeviceTraffic } from './device-traffic.ts';

export interface TrafficTarget {
  deviceId: string;
  /** Base URL of the device's local KServe v2 API. */
  url: string;
}

export interface TrafficOptions {
  targets: readonly TrafficTarget[];
  model: string;
  digits: EvalSet;
  /** Pause between one device's requests: the pace, not a correctness wait. */
  intervalMs?: number;
  /** Bound on one request; a request past it counts as failed. */
  requestTimeoutMs?: number;
}

interface InferAnswer {
  model_version?: string;
  parameters?: { flotilla_answered_by?: AnsweredBy };
  outputs?: Array<{ data?: number[] }>;
}

function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/**
 * Sends MNIST test digits to each device's local inference API, one request at a time per
 * device, the way an application on the device would, and counts where every answer came from
 * and whether it was right. It owns its HTTP connections: `stop()` ends the loops and closes them,
 * and is safe to call twice.
 */
export class TrafficGenerator {
  readonly #opts: TrafficOptions;
  readonly #http = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  readonly #stats = new Map<string, DeviceTraffic>();
  readonly #stop = new AbortController();
  #loops: Promise<void>[] = [];
  #stopping: Promise<void> | undefined;

  constructor(opts: TrafficOptions) {
    this.#opts = opts;
    for (const t of opts.targets) this.#stats.set(t.deviceId, emptyTraffic());
  }

  start(): void {
    if (this.#loops.length > 0) return;
    // Each device starts at a different digit, so the three do not answer the same images in step.
    this.#loops = this.#opts.targets.map((t, i) => this.#loop(t, Math.floor((i * this.#opts.digits.data.length) / this.#opts.targets.length)));
  }

  /** A snapshot of the counters, per device id. */
  stats(): Map<string, DeviceTraffic> {
    return new Map([...this.#stats].map(([id, t]) => [id, { ...t, byVersion: { ...t.byVersion } }]));
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stop.abort(new Error('traffic stopped'));
      await Promise.allSettled(this.#loops);
      await this.#http.close();
    })();
    return this.#stopping;
  }

  async #loop(target: TrafficTarget, first: number): Promise<void> {
    const { digits } = this.#opts;
    let i = first;
    while (!this.#stop.signal.aborted) {
      const row = i % digits.data.length;
      i += 1;
      await this.#one(target, digits.data[row]!, digits.labels[row]!);
      await pause(this.#opts.intervalMs ?? 40, this.#stop.signal).catch(() => undefined);
    }
  }

  async #one(target: TrafficTarget, pixels: number[], label: number): Promise<void> {
    const stats = this.#stats.get(target.deviceId)!;
    const body = JSON.stringify({ inputs: [{ name: this.#opts.digits.input, shape: [1, pixels.length], datatype: 'FP32', data: pixels }] });
    const timeout = this.#opts.requestTimeoutMs ?? 10_000;
    let answer: InferAnswer;
    try {
      const res = await request(`${target.url}/v2/models/${encodeURIComponent(this.#opts.model)}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: this.#http,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        // Stopping the demo must not be counted against the device.
        if (this.#stop.signal.aborted) return;
        stats.requests += 1;
        stats.failed += 1;
        stats.lastError = `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
        return;
      }
      answer = JSON.parse(text) as InferAnswer;
    } catch (err) {
      if (this.#stop.signal.aborted) return;
      stats.requests += 1;
      stats.failed += 1;
      stats.lastError = (err as Error).message;
      return;
    }
    stats.requests += 1;
    const probs = answer.outputs?.[0]?.data;
    const by = answer.parameters?.flotilla_answered_by ?? 'edge';
    if (!probs || probs.length === 0) {
      stats.failed += 1;
      stats.lastError = 'an answer without outputs';
      return;
    }
    if (by === 'cloud') stats.cloud += 1;
    else if (by === 'edge-fallback') stats.edgeFallback += 1;
    else stats.edge += 1;
    if (argmax(probs) === label) stats.correct += 1;
    if (by !== 'cloud') {
      const version = answer.model_version ?? 'unknown';
      stats.byVersion[version] = (stats.byVersion[version] ?? 0) + 1;
    }
  }
}
