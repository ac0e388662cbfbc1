import { Worker } from 'node:worker_threads';
import type { ExecutionProvider } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';
import { systemTimers, type Timers } from '../../runtime/timers.ts';
import { ORT_TYPE_OF, datatypeOfOrt } from '../datatypes.ts';
import type { Tensor, TensorData, TensorSpec } from '../types.ts';
import type { FromWorker, ProviderAttempt, ToWorker, WireSpec, WireTensor, WorkerInit } from './session-worker-protocol.ts';

const WORKER_URL = new URL('./session-worker.mjs', import.meta.url);

export interface SessionWorkerOptions {
  path: string;
  providers: readonly ExecutionProvider[];
  intraOpThreads: number;
  loadTimeoutMs: number;
  closeTimeoutMs: number;
  timers?: Timers;
}

export interface SessionWorkerReady {
  provider: ExecutionProvider;
  /** Providers tried before the one that loaded, with why each failed. */
  attempts: ProviderAttempt[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

interface Pending {
  resolve(outputs: Tensor[]): void;
  reject(err: Error): void;
}

function specsOf(list: WireSpec[], role: string): TensorSpec[] {
  return list.map((s) => {
    const datatype = s.type === null ? undefined : datatypeOfOrt(s.type);
    if (!datatype) throw new FlotillaError('FLT_INFER_LOAD_FAILED', `${role} ${s.name} has type ${String(s.type)}, which Flotilla does not serve`);
    return { name: s.name, datatype, shape: s.shape };
  });
}

function tensorOf(w: WireTensor): Tensor {
  return { name: w.name, datatype: datatypeOfOrt(w.type) ?? 'FP32', shape: [...w.dims], data: w.data as TensorData };
}

/**
 * One worker thread holding one onnxruntime session. Owns the thread: `close()` releases the
 * session and lets the thread end (terminating it past a deadline); `terminate()` kills it at once.
 * When the thread dies for any other reason every request in flight fails with
 * FLT_INFER_WORKER_EXITED and `onExit` listeners hear about it.
 */
export class SessionWorker {
  readonly ready: SessionWorkerReady;
  private readonly worker: Worker;
  private readonly pendingRuns = new Map<number, Pending>();
  private readonly exitListeners: Array<(err: FlotillaError) => void> = [];
  private readonly opts: SessionWorkerOptions;
  private nextId = 1;
  private exited = false;
  private closing: Promise<void> | undefined;

  private constructor(worker: Worker, ready: SessionWorkerReady, opts: SessionWorkerOptions) {
    this.worker = worker;
    this.ready = ready;
    this.opts = opts;
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', () => undefined); // the 'exit' that follows is what counts
    worker.once('exit', (code) => this.onWorkerExit(code));
  }

  /** Starts a thread and opens the session, walking the provider list. Rejects with FLT_INFER_LOAD_FAILED. */
  static start(opts: SessionWorkerOptions): Promise<SessionWorker> {
    const timers = opts.timers ?? systemTimers;
    const init: WorkerInit = { path: opts.path, providers: [...opts.providers], intraOpThreads: opts.intraOpThreads };
    return new Promise((resolve, reject) => {
      let settled = false;
      const worker = new Worker(WORKER_URL, { workerData: init, stdout: false, stderr: false });
      const fail = (message: string, details?: unknown): void => {
        if (settled) return;
        settled = true;
        timers.clearTimeout(timer);
        void worker.terminate();
        reject(new FlotillaError('FLT_INFER_LOAD_FAILED', message, details));
      };
      const timer = timers.setTimeout(() => fail(`loading ${opts.path} took longer than ${opts.loadTimeoutMs} ms`), opts.loadTimeoutMs);
      worker.once('message', (msg: FromWorker) => {
        if (msg.t === 'load-failed') {
          const last = msg.attempts.at(-1)?.error ?? 'no provider to try';
          return fail(`could not load ${opts.path}: ${last}`, { attempts: msg.attempts });
        }
        if (msg.t !== 'ready') return fail(`worker sent ${msg.t} before ready`);
        let ready: SessionWorkerReady;
        try {
          ready = { provider: msg.provider as ExecutionProvider, attempts: msg.attempts, inputs: specsOf(msg.inputs, 'input'), outputs: specsOf(msg.outputs, 'output') };
        } catch (err) {
          return fail((err as Error).message);
        }
        settled = true;
        timers.clearTimeout(timer);
        resolve(new SessionWorker(worker, ready, opts));
      });
      worker.once('error', (err) => fail(`worker failed while loading: ${err.message}`));
      worker.once('exit', (code) => fail(`worker exited with code ${code} while loading`));
    });
  }

  get pending(): number {
    return this.pendingRuns.size;
  }

  get alive(): boolean {
    return !this.exited && this.closing === undefined;
  }

  onExit(listener: (err: FlotillaError) => void): void {
    this.exitListeners.push(listener);
  }

  /** Runs the inputs (already validated). With `transfer`, the inputs' buffers move to the worker and are detached here. */
  run(inputs: readonly Tensor[], outputs: readonly string[] | undefined, transfer: boolean): Promise<Tensor[]> {
    if (!this.alive) return Promise.reject(new FlotillaError('FLT_INFER_UNAVAILABLE', 'the worker is not running'));
    const id = this.nextId++;
    const feeds: WireTensor[] = inputs.map((t) => ({ name: t.name, type: ORT_TYPE_OF[t.datatype], dims: t.shape, data: t.data }));
    const msg: ToWorker = outputs ? { t: 'run', id, feeds, outputs: [...outputs] } : { t: 'run', id, feeds };
    return new Promise<Tensor[]>((resolve, reject) => {
      this.pendingRuns.set(id, { resolve, reject });
      try {
        if (transfer) this.worker.postMessage(msg, transferList(inputs));
        else this.worker.postMessage(msg);
      } catch (err) {
        this.pendingRuns.delete(id);
        reject(new FlotillaError('FLT_INFER_BAD_INPUT', `input could not be sent to the worker: ${(err as Error).message}`));
      }
    });
  }

  /** Releases the session and ends the thread; terminates it if that takes longer than closeTimeoutMs. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Kills the thread at once (fault injection and last resort): requests in flight fail with FLT_INFER_WORKER_EXITED. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private async doClose(): Promise<void> {
    if (this.exited) return;
    const timers = this.opts.timers ?? systemTimers;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    const timer = timers.setTimeout(() => void this.worker.terminate(), this.opts.closeTimeoutMs);
    this.worker.postMessage({ t: 'close' } satisfies ToWorker);
    await exited;
    timers.clearTimeout(timer);
  }

  private onMessage(msg: FromWorker): void {
    if (msg.t !== 'result' && msg.t !== 'error') return;
    const pending = this.pendingRuns.get(msg.id);
    if (!pending) return;
    this.pendingRuns.delete(msg.id);
    if (msg.t === 'result') pending.resolve(msg.outputs.map(tensorOf));
    else pending.reject(new FlotillaError('FLT_INFER_RUN_FAILED', msg.message));
  }

  private onWorkerExit(code: number): void {
    this.exited = true;
    const err = new FlotillaError('FLT_INFER_WORKER_EXITED', `the inference worker exited (code ${code})`);
    for (const pending of this.pendingRuns.values()) pending.reject(err);
    this.pendingRuns.clear();
    if (this.closing === undefined) for (const listener of this.exitListeners) listener(err);
  }
}

function transferList(inputs: readonly Tensor[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of inputs) {
    const data = t.data;
    // Only whole, unshared buffers: detaching a buffer the caller shares with other views would surprise it.
    if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) buffers.add(data.buffer);
  }
  return [...buffers];
}
