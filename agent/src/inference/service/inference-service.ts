import { performance } from 'node:perf_hooks';
import type { Golden, GoldenResult } from '@flotilla/modelkit';
import type { ExecutionProvider } from '@flotilla/protocol';
import { FlotillaError } from '@flotilla/protocol';
import { Registry } from 'prom-client';
import { MicroBatcher, batchable, type BatchingConfig } from '../batching/micro-batcher.ts';
import type { HealthSnapshot } from '../host/health-window.ts';
import { ModelHost, type SwitchResult } from '../host/model-host.ts';
import { selfTest } from '../host/self-test.ts';
import { ARRAY_OF } from '../datatypes.ts';
import type { OnnxInferOptions, OnnxLoadedModelEvents } from '../onnx/onnx-loaded-model.ts';
import { OnnxRuntimeBackend, type OnnxRuntimeBackendOptions } from '../onnx/onnxruntime-backend.ts';
import type { InferenceBackend, LoadSpec, LoadedModel, Tensor, TensorSpec } from '../types.ts';
import type { InferenceObserver } from '../drift-summary.ts';
import { validateInputs } from '../validate-inputs.ts';
import { ResultCache, resultCacheKey, type ResultCacheConfig } from '../result-cache.ts';
import { ResultCacheMetrics } from './result-cache-metrics.ts';
import { ShadowRun, cloneTensors, type ShadowOptions } from '../shadow.ts';
import type { AbReport, AbSplit, ShadowReport } from '@flotilla/protocol';
import { InferenceMetrics } from './inference-metrics.ts';
import { AbSplitRun, type AbArm } from '../ab-split.ts';
import { AbMetrics } from './ab-metrics.ts';

export interface InferOptions {
  /** Serve this version (active or previous) instead of the active one. */
  version?: string;
  /** Only these outputs (default: all). */
  outputs?: readonly string[];
  signal?: AbortSignal;
  /** Move the input buffers to the worker instead of copying them; the caller's arrays are detached afterwards. */
  transferInputs?: boolean;
  /**
   * Looks up the caller's sticky key by the name an A/B split gives (a header or request parameter);
   * called only while the model has a split with a sticky key.
   */
  stickyKey?: (name: string) => string | undefined;
}

export interface InferResult {
  outputs: Tensor[];
  model: string;
  version: string;
  provider: ExecutionProvider;
  /** From accepting the request to its answer, on this thread. */
  latencyMs: number;
  /** Set when the model has a result cache: whether this answer came from it. */
  cache?: 'hit' | 'miss';
  /** Set while the model has an A/B split: the arm that served (`version` says which version that was). */
  arm?: AbArm;
}

export interface StageOptions {
  /** Golden data to self-test the candidate with; without it the candidate only gets warm-up runs on zeros. */
  golden?: Golden;
  warmupRuns?: number;
}

export interface StageResult {
  model: string;
  version: string;
  provider: ExecutionProvider;
  backend: InferenceBackend['kind'];
  selfTest: GoldenResult | null;
}

export interface VersionStatus {
  version: string;
  provider: ExecutionProvider;
  backend: InferenceBackend['kind'];
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

export interface ModelStatus {
  model: string;
  active: VersionStatus | null;
  previous: VersionStatus | null;
  staged: VersionStatus | null;
  /** Requests accepted and not yet answered. */
  queueDepth: number;
  /** The active version's health window (since it became active). */
  health: HealthSnapshot | null;
}

export interface InferenceServiceOptions {
  /**
   * Backends, first match wins (`supports`). A function gets the events a backend should report
   * worker exits to. Default: one OnnxRuntimeBackend with `onnx` options.
   */
  backends?: readonly InferenceBackend[] | ((events: OnnxLoadedModelEvents) => readonly InferenceBackend[]);
  onnx?: OnnxRuntimeBackendOptions;
  /** Metrics go here; a private registry when absent. */
  registry?: Registry;
  /** Micro-batching, off by default: one config for every model, or per model name. */
  batching?: BatchingConfig | ((model: string) => BatchingConfig | undefined);
  /** Monotonic clock for latencies (ms). */
  now?: () => number;
  /** Wall clock for health windows (ms). */
  clock?: () => number;
  /** Longest close() waits for in-flight requests and workers. */
  closeTimeoutMs?: number;
  /** Warm-up runs before a staged version's self-test (default 3). */
  warmupRuns?: number;
  /** Result cache of the active version, off by default: one config for every model, or per model name. */
  cache?: ResultCacheConfig | ((model: string) => ResultCacheConfig | undefined);
  /** Sees each request's inputs and, on success, its outputs (drift monitoring). */
  observer?: InferenceObserver;
  /** Draws which requests a shadow run mirrors and which an A/B split without a sticky key sends to the candidate (tests pin it); Math.random by default. */
  random?: () => number;
}

/** A mirror taken for one request: the run it counts toward and the staged candidate it runs on. */
interface Mirror {
  run: ShadowRun;
  candidate: LoadedModel;
}

function asFlotillaError(err: unknown): FlotillaError {
  if (err instanceof FlotillaError) return err;
  return new FlotillaError('FLT_INFER_RUN_FAILED', (err as Error)?.message ?? String(err));
}

/** Zero-filled inputs of batch 1 (any other dynamic dimension also 1), for warm-up without golden data. */
function zeroInputs(specs: readonly TensorSpec[]): Tensor[] {
  return specs.map((s) => {
    const shape = s.shape.map((d) => (d < 0 ? 1 : d));
    const count = shape.reduce((a, b) => a * b, 1);
    const data = s.datatype === 'BYTES' ? Array.from({ length: count }, () => '') : new ARRAY_OF[s.datatype](count);
    return { name: s.name, datatype: s.datatype, shape, data };
  });
}

/**
 * The agent's in-process inference API: A/B slots per model over pluggable backends, hot swap and
 * rollback, optional micro-batching, metrics and per-version health windows. The local KServe v2
 * HTTP API and the OTA code both drive it.
 */
export class InferenceService {
  readonly registry: Registry;
  private readonly backends: readonly InferenceBackend[];
  private readonly hosts = new Map<string, ModelHost>();
  private readonly backendOf = new WeakMap<LoadedModel, InferenceBackend>();
  private readonly batchers = new Map<LoadedModel, MicroBatcher>();
  private readonly timers = new WeakMap<LoadedModel, { observe(v: number): void }>();
  private readonly depth = new Map<string, number>();
  private readonly metrics: InferenceMetrics;
  private readonly caches = new Map<string, ResultCache>();
  private readonly shadows = new Map<string, ShadowRun>();
  private readonly splits = new Map<string, AbSplitRun>();
  private readonly abMetrics: AbMetrics;
  private readonly cacheMetrics: ResultCacheMetrics;
  private readonly opts: InferenceServiceOptions;
  private readonly now: () => number;
  private closing: Promise<void> | undefined;

  constructor(opts: InferenceServiceOptions = {}) {
    this.opts = opts;
    this.registry = opts.registry ?? new Registry();
    this.metrics = new InferenceMetrics(this.registry, () => this.depth);
    this.cacheMetrics = new ResultCacheMetrics(this.registry, () => this.cacheViews());
    this.abMetrics = new AbMetrics(this.registry);
    this.now = opts.now ?? (() => performance.now());
    const events: OnnxLoadedModelEvents = {
      onWorkerExit: ({ model, version }) => this.metrics.workerRestarts.inc({ model, version }),
    };
    const b = opts.backends;
    this.backends = typeof b === 'function' ? b(events) : (b ?? [new OnnxRuntimeBackend({ ...opts.onnx, events })]);
  }

  async infer(model: string, inputs: readonly Tensor[], opts: InferOptions = {}): Promise<InferResult> {
    const start = this.now();
    if (this.closing) throw this.countError(model, new FlotillaError('FLT_INFER_UNAVAILABLE', 'the inference service is closed'));
    let loaded = this.hosts.get(model)?.select(opts.version);
    // A/B: a request that names no version may go to the staged candidate instead of the active one.
    const split = opts.version === undefined && loaded ? this.splitFor(model, loaded) : undefined;
    let arm: AbArm | undefined;
    if (split) {
      arm = split.pick(split.sticky === undefined ? undefined : opts.stickyKey?.(split.sticky));
      if (arm === 'candidate') loaded = this.hosts.get(model)!.stagedModel!;
    }
    if (!loaded) {
      const what = opts.version === undefined ? `no active version of ${model}` : `${model}@${opts.version} is not loaded`;
      throw this.countError(model, new FlotillaError('FLT_INFER_UNKNOWN_MODEL', what, { model, version: opts.version ?? null }));
    }
    try {
      validateInputs(loaded.inputs, inputs);
    } catch (err) {
      // The caller's mistake, not the model's: counted, but kept out of the version's health window.
      throw this.countError(model, asFlotillaError(err));
    }
    const host = this.hosts.get(model) as ModelHost;
    const cached = this.cacheLookup(host, loaded, inputs, opts.outputs);
    if (cached?.hit) {
      const latencyMs = this.now() - start;
      if (split && arm) this.countArm(split, arm, latencyMs, cached.hit);
      return { outputs: cached.hit, model, version: loaded.version, provider: loaded.provider, latencyMs, cache: 'hit', ...(arm && { arm }) };
    }
    const mirror = opts.version === undefined ? this.takeMirror(host, loaded) : undefined;
    // Transferred inputs are detached once the worker has them, so the mirror needs its own copy.
    const mirrorInputs = mirror && opts.transferInputs ? cloneTensors(inputs) : inputs;
    this.depth.set(model, (this.depth.get(model) ?? 0) + 1);
    try {
      const batcher = this.batcherFor(loaded);
      // Before the call: transferred inputs are detached once the worker has them.
      const observed = this.opts.observer?.observe(model, loaded.version, inputs);
      // Backends that do not know `transfer` / `validated` ignore them.
      const callOpts: OnnxInferOptions = { outputs: opts.outputs, signal: opts.signal, transfer: opts.transferInputs, validated: true };
      const outputs = batcher ? await batcher.infer(inputs, opts.outputs) : await loaded.infer(inputs, callOpts);
      const latencyMs = this.now() - start;
      this.observe(loaded, latencyMs);
      host.record(loaded, latencyMs);
      if (cached) cached.cache.set(cached.key, outputs, cached.epoch);
      observed?.(outputs);
      if (mirror) this.runMirror(mirror, mirrorInputs, opts.outputs, outputs, latencyMs);
      if (split && arm) this.countArm(split, arm, latencyMs, outputs);
      return { outputs, model, version: loaded.version, provider: loaded.provider, latencyMs, ...(cached && { cache: 'miss' as const }), ...(arm && { arm }) };
    } catch (err) {
      mirror?.run.release();
      if (split && arm) split.arm(arm).failure();
      const error = this.countError(model, asFlotillaError(err));
      host.record(loaded, this.now() - start, error.code);
      throw error;
    } finally {
      this.depth.set(model, (this.depth.get(model) as number) - 1);
    }
  }

  /**
   * Loads a version through the first backend that supports it, warms it up, self-tests it when
   * golden data is given, and puts it in the model's inactive slot. A candidate that fails is
   * unloaded (FLT_INFER_SELFTEST_FAILED); the active version keeps serving throughout.
   */
  async stage(spec: LoadSpec, opts: StageOptions = {}): Promise<StageResult> {
    this.assertOpen();
    const backend = this.backends.find((b) => b.supports(spec));
    if (!backend) throw new FlotillaError('FLT_INFER_LOAD_FAILED', `no backend serves ${spec.format} with ${spec.providers.join(', ')}`);
    const loaded = await backend.load(spec);
    this.backendOf.set(loaded, backend);
    let result: GoldenResult | null = null;
    try {
      const warmupRuns = opts.warmupRuns ?? this.opts.warmupRuns ?? 3;
      if (opts.golden) {
        result = await selfTest(loaded, opts.golden, { warmupRuns });
      } else {
        for (let i = 0; i < warmupRuns; i++) await loaded.infer(zeroInputs(loaded.inputs));
      }
    } catch (err) {
      await loaded.unload();
      throw new FlotillaError('FLT_INFER_LOAD_FAILED', `${spec.model}@${spec.version} failed its warm-up: ${(err as Error).message}`);
    }
    if (result && !result.pass) {
      await loaded.unload();
      throw new FlotillaError('FLT_INFER_SELFTEST_FAILED', `${spec.model}@${spec.version} failed its golden self-test: ${result.reason ?? ''}`, result);
    }
    if (this.closing) {
      await loaded.unload();
      throw new FlotillaError('FLT_INFER_UNAVAILABLE', 'the inference service closed while staging');
    }
    const host = this.hostFor(spec.model);
    const displaced = host.stagedModel ?? host.previousModel;
    if (displaced) await this.batchers.get(displaced)?.drain();
    await host.stage(loaded);
    if (displaced) this.batchers.delete(displaced);
    return { model: spec.model, version: spec.version, provider: loaded.provider, backend: backend.kind, selfTest: result };
  }

  /**
   * Starts mirroring `share` of the model's requests to its staged version (docs/ota.md, "Shadow
   * runs"). Answers keep coming from the active version: a mirror starts after the answer, runs
   * beside the next requests and is dropped when `maxInFlight` mirrors are already running.
   */
  startShadow(model: string, opts: ShadowOptions): ShadowReport {
    this.assertOpen();
    const staged = this.requireHost(model).stagedModel;
    if (!staged) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `${model} has no staged version to shadow`, { model });
    this.shadows.get(model)?.stop();
    const run = new ShadowRun(staged.version, opts, this.opts.random);
    this.shadows.set(model, run);
    return run.stats.report();
  }

  /** The model's shadow run so far, or null when none runs. */
  shadowReport(model: string): ShadowReport | null {
    return this.shadows.get(model)?.stats.report() ?? null;
  }

  /** Stops mirroring; returns the run's final report (null when none ran). Mirrors already running finish uncounted. */
  stopShadow(model: string): ShadowReport | null {
    const run = this.shadows.get(model);
    if (!run) return null;
    run.stop();
    this.shadows.delete(model);
    return run.stats.report();
  }

  /**
   * Starts an A/B split of the model (docs/ota.md, "A/B traffic"): `share` of the requests that name
   * no version are answered by the staged candidate, the rest by the active version. A running split
   * is replaced, its counters start again.
   */
  startAb(model: string, split: AbSplit): AbReport {
    this.assertOpen();
    const host = this.requireHost(model);
    const staged = host.stagedModel;
    const active = host.activeModel;
    if (!staged || !active) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `${model} needs an active and a staged version for an A/B split`, { model });
    const run = new AbSplitRun(model, { control: active.version, candidate: staged.version }, split, (this.opts.clock ?? Date.now)(), this.opts.random);
    this.splits.set(model, run);
    return run.report();
  }

  /** The model's A/B split so far, or null when none runs. */
  abReport(model: string): AbReport | null {
    return this.splits.get(model)?.report() ?? null;
  }

  /** Ends the split (every request goes to the active version again); returns its final report, null when none ran. */
  stopAb(model: string): AbReport | null {
    const run = this.splits.get(model);
    if (!run) return null;
    this.splits.delete(model);
    return run.report();
  }

  /** A request `version` answered was sent on to a cloud pool: counted for its arm while a split runs. */
  noteEscalation(model: string, version: string): void {
    const arm = this.splits.get(model)?.armOf(version);
    if (arm) arm.escalations++;
  }

  /** Switches the model to its staged version; the next request goes there. */
  activate(model: string): SwitchResult {
    this.assertOpen();
    this.stopShadow(model);
    this.stopAb(model);
    const result = this.requireHost(model).activate();
    this.clearCache(model);
    this.metrics.swaps.inc({ model });
    return result;
  }

  /** Switches the model back to its previous version. */
  rollback(model: string): SwitchResult {
    this.assertOpen();
    this.stopShadow(model);
    this.stopAb(model);
    const result = this.requireHost(model).rollback();
    this.clearCache(model);
    this.metrics.rollbacks.inc({ model });
    return result;
  }

  /** stage() then activate(): the way to load a model at start-up or replace one in one call. */
  async load(spec: LoadSpec, opts: StageOptions = {}): Promise<StageResult & { switch: SwitchResult }> {
    const staged = await this.stage(spec, opts);
    return { ...staged, switch: this.activate(spec.model) };
  }

  /** Unloads one version (either slot) or the whole model, after its in-flight requests finish. */
  async unload(model: string, version?: string): Promise<void> {
    const host = this.requireHost(model);
    const targets = [host.activeModel, host.previousModel, host.stagedModel].filter((m): m is LoadedModel => m !== undefined && (version === undefined || m.version === version));
    if (targets.includes(host.stagedModel as LoadedModel) || targets.includes(host.activeModel as LoadedModel)) {
      this.stopShadow(model);
      this.stopAb(model);
    }
    if (version !== undefined && targets.length === 0) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `${model}@${version} is not loaded`);
    await Promise.allSettled(targets.map((m) => this.batchers.get(m)?.drain()));
    await host.unload(version);
    for (const m of targets) this.batchers.delete(m);
    if (!host.activeModel) this.clearCache(model);
    if (host.empty) {
      this.hosts.delete(model);
      this.caches.delete(model);
    }
  }

  /** The active version's requests, errors and latency percentiles since it became active. */
  health(model: string): HealthSnapshot | null {
    return this.requireHost(model).health() ?? null;
  }

  status(): ModelStatus[] {
    return [...this.hosts.values()].map((host) => ({
      model: host.model,
      active: this.versionStatus(host.activeModel),
      previous: this.versionStatus(host.previousModel),
      staged: this.versionStatus(host.stagedModel),
      queueDepth: this.depth.get(host.model) ?? 0,
      health: host.health() ?? null,
    }));
  }

  /**
   * Whether a request to `model` can be called off after `infer` takes it: only one a sidecar
   * server may answer (an HTTP call). An onnxruntime request is checked once before it goes to a
   * worker, in the same tick, and cannot be recalled from there.
   */
  cancellable(model: string): boolean {
    const host = this.hosts.get(model);
    if (!host) return false;
    // Asked on every HTTP request: three lookups, no array.
    return this.servedElsewhere(host.activeModel) || this.servedElsewhere(host.stagedModel) || this.servedElsewhere(host.previousModel);
  }

  /** Stops taking requests, lets in-flight ones finish (bounded by closeTimeoutMs), unloads everything. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async doClose(): Promise<void> {
    const work = (async () => {
      await Promise.allSettled([...this.batchers.values()].map((b) => b.drain()));
      await Promise.allSettled([...this.hosts.values()].map((h) => h.unload()));
      this.hosts.clear();
      this.batchers.clear();
      await Promise.allSettled(this.backends.map((b) => b.close()));
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.opts.closeTimeoutMs ?? 10_000)));
    await Promise.race([work, deadline]);
    clearTimeout(timer);
  }

  private assertOpen(): void {
    if (this.closing) throw new FlotillaError('FLT_INFER_UNAVAILABLE', 'the inference service is closed');
  }

  private hostFor(model: string): ModelHost {
    let host = this.hosts.get(model);
    if (!host) {
      host = new ModelHost(model, this.opts.clock ? { now: this.opts.clock } : {});
      this.hosts.set(model, host);
    }
    return host;
  }

  private requireHost(model: string): ModelHost {
    const host = this.hosts.get(model);
    if (!host) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `no model ${model}`, { model });
    return host;
  }

  private batcherFor(loaded: LoadedModel): MicroBatcher | undefined {
    const existing = this.batchers.get(loaded);
    if (existing) return existing;
    const b = this.opts.batching;
    const config = typeof b === 'function' ? b(loaded.model) : b;
    if (!config || !batchable(loaded)) return undefined;
    const batcher = new MicroBatcher(loaded, config, (rows) => this.metrics.batchRows.observe({ model: loaded.model }, rows));
    this.batchers.set(loaded, batcher);
    return batcher;
  }

  /** The model's split when `loaded` (the version the request selected) is its control and the candidate is still staged. */
  private splitFor(model: string, loaded: LoadedModel): AbSplitRun | undefined {
    const run = this.splits.get(model);
    if (!run) return undefined;
    const host = this.hosts.get(model)!;
    if (loaded !== host.activeModel || loaded.version !== run.control.version || host.stagedModel?.version !== run.candidate.version) return undefined;
    return run;
  }

  private countArm(split: AbSplitRun, arm: AbArm, latencyMs: number, outputs: readonly Tensor[]): void {
    const kpis = split.arm(arm);
    kpis.success(latencyMs, outputs);
    this.abMetrics.served(split.model, kpis.version, arm);
  }

  /** A mirror for a request the active version serves, when the model's shadow run takes it. */
  private takeMirror(host: ModelHost, loaded: LoadedModel): Mirror | undefined {
    const run = this.shadows.get(host.model);
    const candidate = host.stagedModel;
    if (!run || !candidate || candidate.version !== run.candidate || loaded !== host.activeModel) return undefined;
    return run.take() ? { run, candidate } : undefined;
  }

  /** Runs the candidate on the same inputs after the answer left; its outcome only feeds the run's counters. */
  private runMirror(mirror: Mirror, inputs: readonly Tensor[], outputs: readonly string[] | undefined, activeOutputs: Tensor[], activeMs: number): void {
    const start = this.now();
    mirror.candidate
      .infer(inputs, outputs ? { outputs } : {})
      .then(
        (candidateOutputs) => mirror.run.stats.record(activeOutputs, candidateOutputs, activeMs, this.now() - start),
        // A candidate that fails on live inputs never counts as agreeing.
        () => mirror.run.stats.fail(),
      )
      .finally(() => mirror.run.release());
  }

  /**
   * The model's result cache for a request the active version serves (a request naming another
   * version bypasses it): a hit, or the key and epoch to store the answer under. The epoch is read
   * in the same turn as the version was selected, so an answer that returns after a switch is refused.
   */
  private cacheLookup(host: ModelHost, loaded: LoadedModel, inputs: readonly Tensor[], outputs: readonly string[] | undefined): { cache: ResultCache; key: string; epoch: number; hit?: Tensor[] } | undefined {
    if (loaded !== host.activeModel) return undefined;
    let cache = this.caches.get(host.model);
    if (!cache) {
      const c = this.opts.cache;
      const config = typeof c === 'function' ? c(host.model) : c;
      if (!config || config.maxBytes <= 0) return undefined;
      cache = new ResultCache(config, () => this.cacheMetrics.evictions.inc({ model: host.model }));
      this.caches.set(host.model, cache);
    }
    const key = resultCacheKey(loaded.version, inputs, outputs);
    const hit = cache.get(key);
    const labels = { model: host.model, version: loaded.version };
    if (hit) {
      this.cacheMetrics.hits.inc(labels);
      return { cache, key, epoch: cache.epoch, hit };
    }
    this.cacheMetrics.misses.inc(labels);
    return { cache, key, epoch: cache.epoch };
  }

  /** Empties the model's cache in the same turn as its active version changes. */
  private clearCache(model: string): void {
    const cache = this.caches.get(model);
    if (!cache) return;
    cache.clear();
    this.cacheMetrics.clears.inc({ model });
  }

  private *cacheViews(): Generator<{ model: string; version: string; stats: ReturnType<ResultCache['stats']> }> {
    for (const [model, cache] of this.caches) {
      const version = this.hosts.get(model)?.activeModel?.version;
      if (version !== undefined) yield { model, version, stats: cache.stats() };
    }
  }

  private observe(loaded: LoadedModel, latencyMs: number): void {
    let child = this.timers.get(loaded);
    if (!child) {
      child = this.metrics.duration.labels({ model: loaded.model, version: loaded.version, provider: loaded.provider });
      this.timers.set(loaded, child);
    }
    child.observe(latencyMs / 1000);
  }

  private countError(model: string, err: FlotillaError): FlotillaError {
    this.metrics.errors.inc({ model, code: err.code });
    return err;
  }

  /** Whether a loaded version runs outside this process (a sidecar), where a call can still be called off. */
  private servedElsewhere(loaded: LoadedModel | undefined): boolean {
    return loaded !== undefined && this.backendKind(loaded) !== 'onnxruntime';
  }

  private backendKind(loaded: LoadedModel): InferenceBackend['kind'] {
    return this.backendOf.get(loaded)?.kind ?? 'onnxruntime';
  }

  private versionStatus(loaded: LoadedModel | undefined): VersionStatus | null {
    if (!loaded) return null;
    return {
      version: loaded.version,
      provider: loaded.provider,
      backend: this.backendKind(loaded),
      inputs: loaded.inputs,
      outputs: loaded.outputs,
    };
  }
}
