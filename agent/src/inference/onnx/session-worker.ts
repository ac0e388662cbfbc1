import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ExecutionProvider } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';
import { systemTimers, type Timers } from '../../runtime/timers.ts';
import { ORT_TYPE_OF, datatypeOfOrt } from '../datatypes.ts';
import type { Tensor, TensorData, TensorSpec } from '../types.ts';
import { C_REQ, C_RESP, C_SLEEPING, DONE, SharedLane } from './shared-lane.ts';
import type { FromWorker, ProviderAttempt, ToWorker, WireSpec, WireTensor, WorkerInit } from './session-worker-protocol.ts';
import { waitAsync } from '../../runtime/wait-async.ts';

const WORKER_URL = new URL('./session-worker.mjs', import.meta.url);
/**
 * The worker is plain JavaScript and needs no loader. Without this it inherits the agent's
 * execArgv (tsx's --import hooks under `tsx` and vitest), which tripled the CPU a worker takes to
 * start (~300 → ~100 ms here), the cost a hot swap puts on the cores serving traffic.
 */
const NO_LOADER = { execArgv: [] as string[] };


export interface SessionWorkerOptions {
  path: string;
  providers: readonly ExecutionProvider[];
  intraOpThreads: number;
  loadTimeoutMs: number;
  closeTimeoutMs: number;
  /**
   * shared-memory (default): the worker sleeps in Atomics.wait and small tensors travel through a
   * SharedArrayBuffer; post-message: plain worker messages with transferred buffers.
   */
  channel?: 'shared-memory' | 'post-message';
  /** Fast-lane data bytes per request for the shared-memory channel (default 64 KiB); larger requests are posted. */
  laneBytes?: number;
  /** Fast-lane slots: small requests in the worker at once, answered back to back (default 8). */
  laneSlots?: number;
  /**
   * Shared-memory channel: the most (µs) the agent thread polls for an answer before it sleeps on
   * Atomics.waitAsync (default 0: never). It polls only when the request is the only one in the
   * worker and the worker's recent runs (a moving average the worker reports) finished within this
   * bound, and then only about as long as such a run takes, since waking this thread from
   * waitAsync costs tens of µs, more than a small model's whole run. Off by default: on the 2-core
   * VM we measure on, the worker's runs slowed from ~20 to ~50 µs while this thread polled, and
   * the answer came later than without polling. The event loop is blocked that long at most.
   */
  spinUs?: number;
  /**
   * Shared-memory channel: how long (µs) the worker keeps polling for the next request after it ran
   * out of work, before it sleeps in Atomics.wait (default 50; 0: never). A request that arrives
   * meanwhile starts at once instead of paying a futex wake-up (and this thread a notify). The
   * worker stops polling while fewer than half of its polls catch a request, so sparse traffic
   * does not burn a core.
   */
  workerSpinUs?: number;
  /**
   * Whether the worker runs onnxruntime-node's native session directly (default true) instead of
   * through its public InferenceSession, whose promise settles from setImmediate and so costs the
   * thread an event-loop turn per run (see session-direct.mjs). Falls back to the public class
   * where the addon does not look as this version expects.
   */
  directRun?: boolean;
  /**
   * Nice increment for the thread while it loads onnxruntime and the session (default 0: none), so
   * loading a candidate yields the cores to the version serving traffic. Where the process may not
   * raise a thread's priority back (no CAP_SYS_NICE) the thread loads at normal priority.
   */
  loadNice?: number;
  timers?: Timers;
}

export interface SessionWorkerReady {
  provider: ExecutionProvider;
  /** Providers tried before the one that loaded, with why each failed. */
  attempts: ProviderAttempt[];
  /** How the worker runs the session: the addon's native session directly, or the public class. */
  runner: 'native' | 'public';
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
  /** Where requests are posted: the worker itself, or the port it drains after each wake-up. */
  private readonly mailbox: Worker | MessagePort;
  private readonly lane: SharedLane | undefined;
  /** Request id per fast-lane slot (0: free), and the free slots. */
  private readonly slotIds: number[];
  private readonly freeSlots: number[] = [];
  /** A waitAsync on the response seq is pending. */
  private armed = false;
  /** Moving average of the worker's fast-lane run times (µs), for the agent-thread poll. */
  private runUs = Infinity;
  /**
   * Moving average of polls that caught their answer (1) or ran out (0). On a crowded machine the
   * worker may not get a core while this thread polls, and polling then only adds delay: below
   * one half the thread stops polling, except for one probe in every 32 requests to notice when
   * the machine frees up.
   */
  private pollHits = 1;
  private pollProbe = 0;
  private readonly collect = (): void => this.collectAnswers();
  private readonly pendingRuns = new Map<number, Pending>();
  private readonly exitListeners: Array<(err: FlotillaError) => void> = [];
  private readonly opts: SessionWorkerOptions;
  private nextId = 1;
  private exited = false;
  private closing: Promise<void> | undefined;

  private constructor(worker: Worker, ready: SessionWorkerReady, opts: SessionWorkerOptions, shared?: { lane: SharedLane; port: MessagePort }) {
    this.worker = worker;
    this.ready = ready;
    this.opts = opts;
    this.lane = shared?.lane.bind(ready.inputs, ready.outputs);
    this.slotIds = new Array<number>(this.lane?.slotCount ?? 0).fill(0);
    for (let k = this.slotIds.length - 1; k >= 0; k--) this.freeSlots.push(k);
    this.mailbox = shared?.port ?? worker;
    this.mailbox.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', () => undefined); // the 'exit' that follows is what counts
    worker.once('exit', (code) => this.onWorkerExit(code));
  }

  /** Starts a thread and opens the session, walking the provider list. Rejects with FLT_INFER_LOAD_FAILED. */
  static start(opts: SessionWorkerOptions): Promise<SessionWorker> {
    const timers = opts.timers ?? systemTimers;
    const shared =
      (opts.channel ?? 'shared-memory') === 'shared-memory' ? { lane: new SharedLane(opts.laneBytes ?? 65_536, Math.max(1, opts.laneSlots ?? 8)), channel: new MessageChannel() } : undefined;
    const init: WorkerInit = { path: opts.path, providers: [...opts.providers], intraOpThreads: opts.intraOpThreads, loadNice: opts.loadNice ?? 0, direct: opts.directRun ?? true };
    if (shared) Object.assign(init, { lane: shared.lane.buffer, port: shared.channel.port2, spinUs: opts.workerSpinUs ?? 50 });
    return new Promise((resolve, reject) => {
      let settled = false;
      const worker = new Worker(WORKER_URL, { workerData: init, transferList: shared ? [shared.channel.port2] : [], stdout: false, stderr: false, ...NO_LOADER });
      const fail = (message: string, details?: unknown): void => {
        if (settled) return;
        settled = true;
        timers.clearTimeout(timer);
        // Not terminate(): a thread inside a native onnxruntime call must not be stopped (see kill()).
        // A slow load that finishes later reads 'close' and ends itself; a failed one has already ended.
        (shared?.channel.port1 ?? worker).postMessage({ t: 'close' } satisfies ToWorker);
        if (shared) {
          Atomics.add(shared.lane.ctrl, C_REQ, 1);
          Atomics.notify(shared.lane.ctrl, C_REQ);
        }
        worker.unref();
        worker.once('exit', () => shared?.channel.port1.close());
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
          ready = { provider: msg.provider as ExecutionProvider, attempts: msg.attempts, inputs: specsOf(msg.inputs, 'input'), outputs: specsOf(msg.outputs, 'output'), runner: msg.runner };
        } catch (err) {
          return fail((err as Error).message);
        }
        settled = true;
        timers.clearTimeout(timer);
        resolve(new SessionWorker(worker, ready, opts, shared ? { lane: shared.lane, port: shared.channel.port1 } : undefined));
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
    const slot = this.freeSlots.length > 0 ? (this.freeSlots[this.freeSlots.length - 1] as number) : -1;
    if (this.lane && slot >= 0 && this.lane.submit(slot, id, inputs, outputs)) return this.runFast(this.lane, slot, id);
    const feeds: WireTensor[] = inputs.map((t) => ({ name: t.name, type: ORT_TYPE_OF[t.datatype], dims: t.shape, data: t.data }));
    const msg: ToWorker = outputs ? { t: 'run', id, feeds, outputs: [...outputs] } : { t: 'run', id, feeds };
    return new Promise<Tensor[]>((resolve, reject) => {
      this.pendingRuns.set(id, { resolve, reject });
      try {
        if (transfer) this.mailbox.postMessage(msg, transferList(inputs));
        else this.mailbox.postMessage(msg);
        this.wake();
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

  /**
   * Fault injection: the thread exits (code 1) at its next message check, between runs, as a crash
   * would; requests in flight fail with FLT_INFER_WORKER_EXITED. Not `worker.terminate()`: stopping
   * a thread while onnxruntime-node is inside `session.run` aborts the whole process (the addon
   * throws a Napi::Error into a terminating environment and std::terminate follows).
   */
  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.mailbox.postMessage({ t: 'exit-now' } satisfies ToWorker);
    this.wake(true);
    return exited;
  }

  private async doClose(): Promise<void> {
    if (this.exited) return;
    const timers = this.opts.timers ?? systemTimers;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    // Past the deadline the thread is let go (unref'd) rather than terminated: it may be inside a
    // native run, and terminating it there would abort the process (see kill()).
    const deadline = new Promise<void>((resolve) => {
      const timer = timers.setTimeout(() => {
        this.worker.unref();
        resolve();
      }, this.opts.closeTimeoutMs);
      void exited.then(() => timers.clearTimeout(timer));
    });
    this.mailbox.postMessage({ t: 'close' } satisfies ToWorker);
    this.wake(true);
    await Promise.race([exited, deadline]);
  }

  /**
   * Tells the worker there is work (a READY slot or a posted message). The notify, a futex
   * syscall, is only paid when the worker said it is going to sleep; a busy or polling worker sees
   * the bumped seq by itself. (The worker sets the flag before it re-checks the seq and sleeps, so
   * no wake-up is lost.) No-op for the post-message channel.
   */
  private wake(always = false): void {
    if (!this.lane) return;
    Atomics.add(this.lane.ctrl, C_REQ, 1);
    if (always || Atomics.load(this.lane.ctrl, C_SLEEPING) === 1) Atomics.notify(this.lane.ctrl, C_REQ);
  }

  private runFast(lane: SharedLane, slot: number, id: number): Promise<Tensor[]> {
    this.freeSlots.pop();
    this.slotIds[slot] = id;
    return new Promise<Tensor[]>((resolve, reject) => {
      this.pendingRuns.set(id, { resolve, reject });
      this.wake();
      if (this.armed) return;
      // Alone in the worker and expected within the bound: poll instead of sleeping.
      const spinUs = this.opts.spinUs ?? 0;
      if (this.runUs < spinUs && this.freeSlots.length === this.slotIds.length - 1 && (this.pollHits >= 0.5 || (++this.pollProbe & 31) === 0)) {
        const until = performance.now() + Math.min(spinUs, this.runUs * 1.5 + 5) / 1000;
        while (lane.state(slot) !== DONE && performance.now() < until);
        this.pollHits = this.pollHits * 0.9 + (lane.state(slot) === DONE ? 0.1 : 0);
      }
      this.collectAnswers();
    });
  }

  /**
   * Resolves every answered slot, then waits (one waitAsync for all slots in flight) for the next
   * answer while any slot is still out. Under concurrency one wake-up of this thread collects
   * several answers.
   */
  private collectAnswers(): void {
    this.armed = false;
    const lane = this.lane as SharedLane;
    for (;;) {
      if (this.exited) return;
      // Read before the scan: an answer written after it changes the seq and the wait returns at once.
      const seen = Atomics.load(lane.ctrl, C_RESP);
      let out = 0;
      for (let slot = 0; slot < this.slotIds.length; slot++) {
        const id = this.slotIds[slot] as number;
        if (id === 0) continue;
        if (lane.state(slot) !== DONE) {
          out++;
          continue;
        }
        const outputs = lane.answeredInSlot(slot) ? lane.read(slot) : undefined;
        const ran = lane.runUs(slot);
        this.runUs = this.runUs === Infinity ? ran : this.runUs * 0.9 + ran * 0.1;
        lane.free(slot);
        this.slotIds[slot] = 0;
        this.freeSlots.push(slot);
        const pending = this.pendingRuns.get(id);
        // No outputs: the answer or the error comes by message.
        if (!pending || !outputs) continue;
        this.pendingRuns.delete(id);
        pending.resolve(outputs);
      }
      if (out === 0) return;
      const wait = waitAsync(lane.ctrl, C_RESP, seen);
      if (wait.async) {
        this.armed = true;
        void (wait.value as Promise<unknown>).then(this.collect);
        return;
      }
    }
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
    if (this.mailbox !== this.worker) (this.mailbox as MessagePort).close();
    if (this.lane) {
      // Release a fast-lane waiter the dead worker will never answer.
      Atomics.add(this.lane.ctrl, C_RESP, 1);
      Atomics.notify(this.lane.ctrl, C_RESP);
    }
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
