import type { RepositoryIndexEntry, TensorMetadata } from '@flotilla/kserve';
import { batchable, OnnxRuntimeBackend, type OnnxLoadedModel } from '@flotilla/agent/inference';
import { FlotillaError, type ExecutionProvider } from '@flotilla/protocol';
import { DynamicBatcher, type BatcherEvents } from '../batching/dynamic-batcher.ts';
import type { BatchingConfig, FrozenPoolConfig } from '../config/schema.ts';
import type { PoolTimers } from '../runtime/timers.ts';
import { effectiveBatching } from './model-config.ts';
import { checkName, compareVersions, type ModelRepository, type RepositoryModel } from './model-repository.ts';

/** One loaded model version: its worker threads and the queue in front of them. */
export interface ServedVersion {
  readonly model: string;
  readonly version: string;
  readonly provider: ExecutionProvider;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
  readonly batching: Readonly<BatchingConfig>;
  /** Every input and output has a dynamic dim 0, so requests may be stacked. */
  readonly batchable: boolean;
  readonly batcher: DynamicBatcher;
}

export type ModelState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

interface ModelEntry {
  state: ModelState;
  reason?: string;
  /** Ascending by version; the last one answers requests that name no version. */
  versions: ServedVersion[];
  /** Per-model operations (load, unload) run one after another. */
  chain: Promise<unknown>;
}

export interface ModelManagerOptions {
  repository: ModelRepository;
  config: FrozenPoolConfig;
  timers: PoolTimers;
  /** Per-version batch events, for metrics. */
  events?: (model: string, version: string) => BatcherEvents;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * The models this pool worker serves. Loading reads the model's repository folder again, starts
 * its worker threads, and only then swaps it in; the versions it replaces finish what they queued
 * before their workers stop, so a reload drops no request.
 */
export class ModelManager {
  private readonly opts: ModelManagerOptions;
  private readonly models = new Map<string, ModelEntry>();
  private readonly loaded = new Map<ServedVersion, OnnxLoadedModel>();
  private closing: Promise<void> | undefined;

  constructor(opts: ModelManagerOptions) {
    this.opts = opts;
  }

  /** The version a request names, or the newest one; throws FLT_INFER_UNKNOWN_MODEL or FLT_KSERVE_MODEL_NOT_READY. */
  resolve(model: string, version?: string): ServedVersion {
    const entry = this.models.get(model);
    if (!entry) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `no model ${model}`, { model });
    if (entry.versions.length === 0) {
      throw new FlotillaError('FLT_KSERVE_MODEL_NOT_READY', `${model} is ${entry.state.toLowerCase()}${entry.reason ? `: ${entry.reason}` : ''}`, { model });
    }
    if (version === undefined) return entry.versions.at(-1) as ServedVersion;
    const found = entry.versions.find((v) => v.version === version);
    if (!found) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `${model} version ${version} is not loaded`, { model, version });
    return found;
  }

  /** Versions served for a model, ascending ([] when none). */
  versionsOf(model: string): readonly ServedVersion[] {
    return this.models.get(model)?.versions ?? [];
  }

  /** Requests waiting per model, summed over its versions. */
  queueDepths(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, entry] of this.models) {
      let depth = 0;
      for (const v of entry.versions) depth += v.batcher.queueDepth;
      out.set(name, depth);
    }
    return out;
  }

  /** Every model folder of the repository and every model known here, with its state. */
  async index(readyOnly = false): Promise<RepositoryIndexEntry[]> {
    const names = new Set([...(await this.opts.repository.list().catch(() => [])), ...this.models.keys()]);
    const out: RepositoryIndexEntry[] = [];
    for (const name of [...names].sort()) {
      const entry = this.models.get(name);
      if (entry && entry.versions.length > 0) {
        for (const v of entry.versions) out.push({ name, version: v.version, state: 'READY' });
      } else if (!readyOnly) {
        const e: RepositoryIndexEntry = { name, state: entry?.state ?? 'UNAVAILABLE' };
        e.reason = entry?.reason ?? 'not loaded';
        out.push(e);
      }
    }
    return out;
  }

  /** Loads (or reloads) a model from the repository. Rejects with a coded error; a model already served keeps serving. */
  load(model: string): Promise<void> {
    checkName(model, 'model');
    return this.enqueue(model, () => this.doLoad(model));
  }

  /** Stops serving a model: queued requests still run, then its workers stop. */
  unload(model: string): Promise<void> {
    checkName(model, 'model');
    const entry = this.models.get(model);
    if (!entry) return Promise.reject(new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `no model ${model}`, { model }));
    return this.enqueue(model, async () => {
      const old = entry.versions;
      entry.versions = [];
      entry.state = 'UNLOADING';
      await this.retire(old);
      entry.state = 'UNAVAILABLE';
      entry.reason = 'unloaded';
    });
  }

  /** Unloads every model. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.models.values()].map((e) => e.chain));
      await Promise.allSettled([...this.models.values()].map((e) => this.retire(e.versions.splice(0))));
    })();
    return this.closing;
  }

  private enqueue(model: string, op: () => Promise<void>): Promise<void> {
    if (this.closing) return Promise.reject(new FlotillaError('FLT_NOT_READY', 'the pool worker is closing'));
    let entry = this.models.get(model);
    if (!entry) {
      entry = { state: 'UNAVAILABLE', reason: 'not loaded', versions: [], chain: Promise.resolve() };
      this.models.set(model, entry);
    }
    const next = entry.chain.then(op, op);
    entry.chain = next.catch(() => undefined);
    return next;
  }

  private async doLoad(model: string): Promise<void> {
    const entry = this.models.get(model) as ModelEntry;
    const serving = entry.versions.length > 0;
    if (!serving) entry.state = 'LOADING';
    let fresh: ServedVersion[] = [];
    try {
      const found = await this.opts.repository.read(model);
      const batching = effectiveBatching(model, this.opts.config.batching, found.config);
      const chosen = found.config.versionPolicy === 'all' ? found.versions : found.versions.slice(-1);
      const providers = [...(found.config.providers ?? this.opts.config.providers)];
      const started = await Promise.allSettled(chosen.map((v) => this.startVersion(found, v.version, v.path, providers, batching)));
      fresh = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      await this.retire(fresh);
      const message = err instanceof Error ? err.message : String(err);
      entry.reason = message;
      if (!serving) entry.state = 'UNAVAILABLE';
      this.opts.log?.('model load failed', { model, reason: message });
      throw err;
    }
    const old = entry.versions;
    entry.versions = fresh.sort((a, b) => compareVersions(a.version, b.version));
    entry.state = 'READY';
    delete entry.reason;
    this.opts.log?.('model loaded', { model, versions: fresh.map((v) => v.version) });
    await this.retire(old);
  }

  private async startVersion(found: RepositoryModel, version: string, path: string, providers: ExecutionProvider[], batching: BatchingConfig): Promise<ServedVersion> {
    // A backend per version: worker count is a per-model setting.
    const loaded = await new OnnxRuntimeBackend({
      intraOpThreads: this.opts.config.intraOpThreads,
      laneBytes: this.opts.config.laneBytes,
      workersPerModel: batching.instances,
    }).load({ model: found.name, version, path, format: 'onnx', providers });
    const canBatch = batchable(loaded);
    // A model with a fixed dim 0 cannot be stacked: its requests run one at a time.
    const policy: BatchingConfig = canBatch ? batching : { ...batching, dynamicBatching: false };
    const events = this.opts.events?.(found.name, version);
    const batcher = new DynamicBatcher(
      // The stacked (or decoded) inputs belong to this request alone: move them to the worker.
      (inputs, outputs) => loaded.infer(inputs, { transfer: true, validated: true, ...(outputs && { outputs }) }),
      policy,
      { timers: this.opts.timers, ...(events && { events }) },
    );
    const served: ServedVersion = {
      model: found.name,
      version,
      provider: loaded.provider,
      inputs: loaded.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
      outputs: loaded.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
      batching: Object.freeze(policy),
      batchable: canBatch,
      batcher,
    };
    this.loaded.set(served, loaded);
    return served;
  }

  /** Lets the versions finish what they queued, then stops their workers. */
  private async retire(versions: readonly ServedVersion[]): Promise<void> {
    await Promise.allSettled(
      versions.map(async (v) => {
        await v.batcher.close();
        await this.loaded.get(v)?.unload();
        this.loaded.delete(v);
      }),
    );
  }
}
