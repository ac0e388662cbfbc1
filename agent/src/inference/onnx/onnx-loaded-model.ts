import type { ExecutionProvider } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';
import type { LoadedModel, Tensor, TensorSpec } from '../types.ts';
import { validateInputs } from '../validate-inputs.ts';
import type { ProviderAttempt } from './session-worker-protocol.ts';
import { SessionWorker, type SessionWorkerOptions } from './session-worker.ts';

/** Options `infer` accepts beyond the LoadedModel contract. */
export interface OnnxInferOptions {
  outputs?: readonly string[];
  signal?: AbortSignal;
  /** Move the inputs' buffers to the worker instead of copying them (they are detached afterwards). */
  transfer?: boolean;
  /** The inputs were already checked against `inputs` (by the service); skip the second check. */
  validated?: boolean;
}

export type OnnxModelState = 'serving' | 'restarting' | 'failed' | 'unloading' | 'unloaded';

export interface OnnxLoadedModelEvents {
  /** A worker died and is being restarted (`restarted` false when the model is now marked failed). */
  onWorkerExit?(info: { model: string; version: string; restarted: boolean; error: FlotillaError }): void;
}

/**
 * A model version served by one or more worker threads, each with its own session. A worker that
 * dies fails its in-flight requests (FLT_INFER_WORKER_EXITED) and is restarted, up to
 * `maxRestarts` times over the model's life; after that the model is marked failed and answers
 * FLT_INFER_UNAVAILABLE.
 */
export class OnnxLoadedModel implements LoadedModel {
  readonly model: string;
  readonly version: string;
  readonly provider: ExecutionProvider;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** Providers tried before `provider` loaded, with why each failed. */
  readonly fallbacks: readonly ProviderAttempt[];
  /** How its workers run the session (see SessionWorkerOptions.directRun). */
  readonly runner: 'native' | 'public';
  private workers: Array<SessionWorker | Promise<SessionWorker | undefined>>;
  private readonly workerOpts: SessionWorkerOptions;
  private readonly maxRestarts: number;
  private readonly events: OnnxLoadedModelEvents;
  private restarts = 0;
  private next = 0;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private unloading: Promise<void> | undefined;
  private failed = false;
  private readonly onUnloaded: (() => void) | undefined;

  constructor(
    ids: { model: string; version: string },
    workers: SessionWorker[],
    workerOpts: SessionWorkerOptions,
    opts: { maxRestarts: number; events?: OnnxLoadedModelEvents; onUnloaded?: () => void },
  ) {
    const first = workers[0];
    if (!first) throw new Error('a loaded model needs at least one worker');
    this.model = ids.model;
    this.version = ids.version;
    this.provider = first.ready.provider;
    this.inputs = first.ready.inputs;
    this.outputs = first.ready.outputs;
    this.fallbacks = first.ready.attempts;
    this.runner = first.ready.runner;
    // Restarted workers must use the provider that loaded first, so the model never changes provider silently.
    this.workerOpts = { ...workerOpts, providers: [first.ready.provider] };
    this.maxRestarts = opts.maxRestarts;
    this.events = opts.events ?? {};
    this.onUnloaded = opts.onUnloaded;
    this.workers = workers;
    workers.forEach((w, i) => this.watch(w, i));
  }

  get state(): OnnxModelState {
    if (this.unloading) return this.inFlight > 0 ? 'unloading' : 'unloaded';
    if (this.failed) return 'failed';
    return this.workers.some((w) => w instanceof Promise) ? 'restarting' : 'serving';
  }

  /** Requests accepted and not yet answered. */
  get pending(): number {
    return this.inFlight;
  }

  get workerRestarts(): number {
    return this.restarts;
  }

  async infer(inputs: readonly Tensor[], opts: OnnxInferOptions = {}): Promise<Tensor[]> {
    if (this.unloading) throw new FlotillaError('FLT_INFER_UNAVAILABLE', `${this.model}@${this.version} is unloading`);
    if (this.failed) throw new FlotillaError('FLT_INFER_UNAVAILABLE', `${this.model}@${this.version} failed: its worker exited too often`);
    opts.signal?.throwIfAborted();
    if (!opts.validated) validateInputs(this.inputs, inputs);
    this.inFlight++;
    try {
      // A ready worker is picked without an await: this is the hot path.
      const worker = this.readyWorker() ?? (await this.restartedWorker());
      return await worker.run(inputs, opts.outputs, opts.transfer === true);
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /** Fault injection: makes one worker thread exit between runs, as a crash would (see SessionWorker.kill). */
  async killWorker(index = 0): Promise<void> {
    const w = await this.workers[index];
    await w?.kill();
  }

  unload(): Promise<void> {
    this.unloading ??= this.doUnload();
    return this.unloading;
  }

  private async doUnload(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    const workers = await Promise.all(this.workers);
    await Promise.allSettled(workers.map((w) => w?.close()));
    this.onUnloaded?.();
  }

  private readyWorker(): SessionWorker | undefined {
    const only = this.workers.length === 1 ? this.workers[0] : undefined;
    if (only instanceof SessionWorker) return only;
    // Least pending first, round robin among equals.
    const n = this.workers.length;
    let best: SessionWorker | undefined;
    for (let k = 0; k < n; k++) {
      const w = this.workers[(this.next + k) % n];
      if (w instanceof SessionWorker && (!best || w.pending < best.pending)) best = w;
    }
    this.next = (this.next + 1) % n;
    return best;
  }

  /** Every worker is restarting: wait for the first. */
  private async restartedWorker(): Promise<SessionWorker> {
    const restarted = await this.workers[0];
    if (!restarted) throw new FlotillaError('FLT_INFER_UNAVAILABLE', `${this.model}@${this.version} failed: its worker could not be restarted`);
    return restarted;
  }

  private watch(worker: SessionWorker, index: number): void {
    worker.onExit((error) => {
      if (this.unloading) return;
      const restart = this.restarts < this.maxRestarts;
      this.events.onWorkerExit?.({ model: this.model, version: this.version, restarted: restart, error });
      if (!restart) {
        this.failed = true;
        return;
      }
      this.restarts++;
      const replacement = SessionWorker.start(this.workerOpts).then(
        (w) => {
          if (this.unloading) {
            void w.close();
            return undefined;
          }
          this.workers[index] = w;
          this.watch(w, index);
          return w;
        },
        () => {
          this.failed = true;
          return undefined;
        },
      );
      this.workers[index] = replacement;
    });
  }
}
