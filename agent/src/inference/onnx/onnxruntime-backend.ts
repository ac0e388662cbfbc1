import { FlotillaError } from '@flotilla/protocol';
import type { Timers } from '../../runtime/timers.ts';
import type { InferenceBackend, LoadSpec } from '../types.ts';
import { OnnxLoadedModel, type OnnxLoadedModelEvents } from './onnx-loaded-model.ts';
import { ORT_PROVIDERS, ortAvailableProviders, providersToTry, type AvailableProviders } from './provider-probe.ts';
import { SessionWorker, type SessionWorkerOptions } from './session-worker.ts';

export interface OnnxRuntimeBackendOptions {
  /** Which providers to try at all; defaults to what this onnxruntime-node build lists. */
  availableProviders?: AvailableProviders;
  /** Worker threads per loaded model version (default 1). */
  workersPerModel?: number;
  /** onnxruntime intra-op threads per session (default 1: a small device runs other work too). */
  intraOpThreads?: number;
  /** Worker restarts allowed over a model version's life before it is marked failed (default 3). */
  maxRestarts?: number;
  loadTimeoutMs?: number;
  closeTimeoutMs?: number;
  /** How requests reach the worker (default shared-memory; see SessionWorkerOptions). */
  channel?: SessionWorkerOptions['channel'];
  /** Fast-lane bytes per worker for the shared-memory channel (default 64 KiB). */
  laneBytes?: number;
  /** Most agent-thread polling before sleeping, shared-memory channel only (default 0: off; see SessionWorkerOptions). */
  spinUs?: number;
  /** Fast-lane slots per worker, shared-memory channel only (default 8; see SessionWorkerOptions). */
  laneSlots?: number;
  /** Worker-thread polling before sleeping, shared-memory channel only (default 50 µs; see SessionWorkerOptions). */
  workerSpinUs?: number;
  /** Whether workers run the addon's native session directly (default true; see SessionWorkerOptions). */
  directRun?: boolean;
  /**
   * Nice increment for a worker loading while another version this backend loaded is serving (a
   * hot swap), default 5; see SessionWorkerOptions. The first load, at start-up, and the restart
   * of a crashed worker run at full priority: nothing waits on them but the model itself. Kept
   * mild because a crowded machine starves a much-lowered thread (nice 10 took a start-up from
   * seconds to tens of seconds under a load of 40 on 2 cores).
   */
  loadNice?: number;
  timers?: Timers;
  events?: OnnxLoadedModelEvents;
}

/**
 * In-process onnxruntime: every loaded model version gets its own worker thread(s), each holding
 * one InferenceSession, so `session.run` never blocks the agent's event loop.
 */
export class OnnxRuntimeBackend implements InferenceBackend {
  readonly kind = 'onnxruntime' as const;
  private readonly opts: OnnxRuntimeBackendOptions;
  private readonly loaded = new Set<OnnxLoadedModel>();
  private closed: Promise<void> | undefined;

  constructor(opts: OnnxRuntimeBackendOptions = {}) {
    this.opts = opts;
  }

  supports(spec: Pick<LoadSpec, 'format' | 'providers'>): boolean {
    return spec.format === 'onnx' && spec.providers.some((p) => (ORT_PROVIDERS as readonly string[]).includes(p));
  }

  async load(spec: LoadSpec): Promise<OnnxLoadedModel> {
    if (this.closed) throw new FlotillaError('FLT_INFER_UNAVAILABLE', 'the onnxruntime backend is closed');
    if (!this.supports(spec)) throw new FlotillaError('FLT_INFER_LOAD_FAILED', `onnxruntime cannot serve ${spec.format} with providers ${spec.providers.join(', ')}`);
    const available = await (this.opts.availableProviders ?? ortAvailableProviders)();
    const providers = providersToTry(spec.providers, available);
    if (providers.length === 0) {
      throw new FlotillaError('FLT_INFER_LOAD_FAILED', `none of ${spec.providers.join(', ')} is available here (available: ${available.join(', ')})`);
    }
    const workerOpts: SessionWorkerOptions = {
      path: spec.path,
      providers,
      intraOpThreads: this.opts.intraOpThreads ?? 1,
      loadTimeoutMs: this.opts.loadTimeoutMs ?? 60_000,
      closeTimeoutMs: this.opts.closeTimeoutMs ?? 5_000,
      ...(this.opts.timers ? { timers: this.opts.timers } : {}),
      ...(this.opts.channel ? { channel: this.opts.channel } : {}),
      ...(this.opts.laneBytes !== undefined ? { laneBytes: this.opts.laneBytes } : {}),
      ...(this.opts.spinUs !== undefined ? { spinUs: this.opts.spinUs } : {}),
      ...(this.opts.laneSlots !== undefined ? { laneSlots: this.opts.laneSlots } : {}),
      ...(this.opts.workerSpinUs !== undefined ? { workerSpinUs: this.opts.workerSpinUs } : {}),
      ...(this.opts.directRun !== undefined ? { directRun: this.opts.directRun } : {}),
    };
    const swapping = this.loaded.size > 0 ? { loadNice: this.opts.loadNice ?? 5 } : {};
    const first = await SessionWorker.start({ ...workerOpts, ...swapping });
    // Further workers use the provider the first one settled on.
    const more = await Promise.allSettled(
      Array.from({ length: Math.max(0, (this.opts.workersPerModel ?? 1) - 1) }, () => SessionWorker.start({ ...workerOpts, ...swapping, providers: [first.ready.provider] })),
    );
    const workers = [first, ...more.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
    const failure = more.find((r) => r.status === 'rejected');
    if (failure) {
      await Promise.allSettled(workers.map((w) => w.close()));
      throw failure.reason;
    }
    const model = new OnnxLoadedModel({ model: spec.model, version: spec.version }, workers, workerOpts, {
      maxRestarts: this.opts.maxRestarts ?? 3,
      ...(this.opts.events ? { events: this.opts.events } : {}),
      onUnloaded: () => this.loaded.delete(model),
    });
    this.loaded.add(model);
    return model;
  }

  /** Unloads every model version this backend loaded that is still loaded. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= Promise.allSettled([...this.loaded].map((m) => m.unload())).then(() => undefined);
    return this.closed;
  }
}
