import type { Golden } from '@flotilla/modelkit';
import {
  FlotillaError,
  type AbSplit,
  type DesiredState,
  type ExecutionProvider,
  type ModelHealth,
  type ReportedState,
  type ShadowGate,
  type ShadowReport,
  type VersionMetadata,
} from '@flotilla/protocol';
import {
  assertVariantCompatible,
  expectedArtifact,
  resolveVariant,
  verifyFile,
  verifyRelease,
  type HardwareInventory,
  type ReleaseVariant,
  type VerifiedRelease,
} from '@flotilla/release';
import type { InferenceService } from '../inference/service/inference-service.ts';
import type { LoadSpec } from '../inference/types.ts';
import type { Logger } from '../logger.ts';
import type { EventData } from '../outbox/outbox.ts';
import { sleep, systemTimers, type TimerHandle, type Timers } from '../runtime/timers.ts';
import type { DesiredStateApplier } from '../state/applier.ts';
import { openAgentDatabase, type AgentDatabase } from '../storage/database.ts';
import { activationWindowOf, decideActivation } from './activation-window.ts';
import { ArtifactCache, freeDiskBytes } from './artifact-cache.ts';
import { downloadArtifact } from './downloader.ts';
import { watchHealth } from './health-gate.ts';
import { DEFAULT_OTA_CONFIG, type OtaConfig } from './ota-config.ts';
import { OtaStore, type ModelSlots, type SlotEntry } from './ota-store.ts';
import { ReleaseClient, type ServerAccess } from './release-client.ts';
import { TrustStore } from './trust-store.ts';

type ReportedModels = ReportedState['models'];
/** The protocol's reported model plus the OTA extras it allows (target, progress, window). */
type ReportedModel = ReportedModels[string] & {
  target?: string;
  bytes?: number;
  total?: number;
  activateAfter?: number;
  activateBefore?: number;
  waiting?: string;
};
type DesiredEntry = DesiredState['models'][string] & { variant?: unknown };

/** The slice of the inference service the OTA code drives. */
export type OtaInference = Pick<InferenceService, 'stage' | 'activate' | 'rollback' | 'load' | 'unload' | 'health' | 'status' | 'startShadow' | 'stopShadow' | 'shadowReport'> &
  Partial<Pick<InferenceService, 'startAb' | 'stopAb' | 'abReport'>>;

/** What the manager needs from the running agent; wired once with `attach()`. */
export interface OtaHost {
  /** Durable outbox event (`ota.*`). */
  enqueueEvent(kind: string, data: EventData): unknown;
  /** Re-publishes the reported models between applies (progress, health verdicts, rollbacks). */
  reportModels(models: ReportedModels, generation?: number): void;
  inventory(): HardwareInventory | undefined;
  server(): ServerAccess;
}

export interface ModelManagerOptions {
  dataDir: string;
  inference: OtaInference;
  logger: Logger;
  config?: Partial<OtaConfig>;
  timers?: Timers;
  /** Free bytes on the filesystem of a path (tests simulate a full disk). */
  freeBytes?: (path: string) => Promise<number>;
  /** Optional database handle; by default the manager opens its own connection to agent.db. */
  db?: AgentDatabase;
}

interface Job {
  key: string;
  abort: AbortController;
  done: Promise<void>;
  /** the job only waits to retry a failure that may pass by itself */
  retry?: boolean;
}

/** Failures that may pass by themselves: retried with backoff instead of being held against the release. */
const PASSING = new Set(['FLT_OTA_DOWNLOAD_FAILED', 'FLT_OTA_DOWNLOAD_STALLED', 'FLT_OTA_DISK_FULL', 'FLT_OTA_UNTRUSTED', 'FLT_OTA_UNKNOWN_MODEL']);
/** Failures of the build itself: remembered, so the same version is not installed again and again. */
const STICKY = new Set(['FLT_OTA_LOAD_FAILED', 'FLT_OTA_SELFTEST_FAILED', 'FLT_OTA_HEALTH_FAILED', 'FLT_OTA_INCOMPATIBLE', 'FLT_OTA_SHADOW_DISAGREED']);

function jobKey(entry: DesiredEntry | { version: string }): string {
  const w = activationWindowOf(entry as Record<string, unknown>);
  return JSON.stringify([entry.version, w.activateAfter ?? null, w.activateBefore ?? null, shadowGateOf(entry) ?? null, abSplitOf(entry) ?? null]);
}

/** The entry's A/B split when it is well formed; a changed split is a new job (the split starts again). */
function abSplitOf(entry: DesiredEntry | { version: string }): AbSplit | undefined {
  const a = (entry as { ab?: unknown }).ab as Partial<AbSplit> | undefined;
  if (!a || typeof a.share !== 'number' || !(a.share >= 0 && a.share <= 1)) return undefined;
  return typeof a.sticky === 'string' ? { share: a.share, sticky: a.sticky } : { share: a.share };
}

/** The entry's shadow gate when it is well formed (the desired state was validated; this guards direct callers). */
function shadowGateOf(entry: DesiredEntry | { version: string }): ShadowGate | undefined {
  const g = (entry as { shadow?: unknown }).shadow as Partial<ShadowGate> | undefined;
  if (!g || typeof g.share !== 'number' || typeof g.minSamples !== 'number' || typeof g.minAgreement !== 'number') return undefined;
  return { share: g.share, minSamples: g.minSamples, minAgreement: g.minAgreement };
}

function errorCode(err: unknown): string {
  if (!(err instanceof FlotillaError)) return 'FLT_INTERNAL';
  if (err.code === 'FLT_INFER_SELFTEST_FAILED') return 'FLT_OTA_SELFTEST_FAILED';
  if (err.code.startsWith('FLT_INFER_')) return 'FLT_OTA_LOAD_FAILED';
  return err.code;
}

function providersFor(entry: SlotEntry): ExecutionProvider[] {
  const first = entry.provider as ExecutionProvider;
  // An ONNX build resolved for a GPU provider still runs on the CPU if that provider fails to load.
  return entry.format === 'onnx' && first !== 'cpu' ? [first, 'cpu'] : [first];
}

function goldenOf(metadata: VersionMetadata | undefined): Golden | undefined {
  // The registry's golden vectors have the model kit's shape (float32 tensors by name + tolerance).
  return metadata?.golden as Golden | undefined;
}

/**
 * Drives the installed models toward the desired state: trust, manifest verification, variant
 * choice, resumable download, A/B slots, golden self-test, atomic switch, health window and local
 * rollback. Each step is reported as the model's `state` and as a durable `ota.*` event. Work that
 * outlives one apply (a health window, an activation that waits for its maintenance window, a
 * retry) runs as one background job per model; a newer desired entry for that model cancels it.
 */
export class ModelManager implements DesiredStateApplier {
  readonly store: OtaStore;
  readonly cache: ArtifactCache;
  readonly trust: TrustStore;
  readonly config: OtaConfig;

  readonly #inference: OtaInference;
  readonly #logger: Logger;
  readonly #timers: Timers;
  readonly #freeBytes: (path: string) => Promise<number>;
  readonly #db: AgentDatabase;
  readonly #ownsDb: boolean;
  readonly #status = new Map<string, ReportedModel>();
  readonly #jobs = new Map<string, Job>();
  readonly #retries = new Map<string, number>();
  #host: OtaHost | undefined;
  #client: ReleaseClient | undefined;
  #desiredNames: string[] | undefined;
  #generation: number | undefined;
  #lastProgressAt = new Map<string, number>();
  /** Requests counted per model at the last report, so the refresh re-reports only what changed. */
  #reportedRequests = new Map<string, number>();
  #healthTimer: TimerHandle | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ModelManagerOptions) {
    this.#inference = opts.inference;
    this.#logger = opts.logger;
    this.#timers = opts.timers ?? systemTimers;
    this.#freeBytes = opts.freeBytes ?? freeDiskBytes;
    this.config = {
      ...DEFAULT_OTA_CONFIG,
      ...opts.config,
      health: { ...DEFAULT_OTA_CONFIG.health, ...opts.config?.health },
      download: { ...DEFAULT_OTA_CONFIG.download, ...opts.config?.download },
    };
    this.#ownsDb = opts.db === undefined;
    this.#db = opts.db ?? openAgentDatabase(opts.dataDir);
    this.store = new OtaStore(this.#db, () => this.#timers.now());
    this.cache = new ArtifactCache(opts.dataDir);
    this.trust = new TrustStore(opts.dataDir);
  }

  /** Connects the manager to the running agent (events, reports, inventory, server access). */
  attach(host: OtaHost): void {
    this.#host = host;
    this.#client = new ReleaseClient(() => host.server());
  }

  /**
   * The reported view of every model the manager knows, now, with the health counters of the
   * version that serves (the server's rollout health gate compares them across the fleet).
   */
  models(): ReportedModels {
    const names = this.#desiredNames ?? [...this.#status.keys()];
    const out: ReportedModels = {};
    for (const name of names) {
      const model: ReportedModel = { ...(this.#status.get(name) ?? { version: null, state: 'pending' }) };
      const health = model.version === null ? undefined : this.#reportedHealth(name, model.version);
      if (health) model.health = health;
      out[name] = model;
    }
    return out;
  }

  /**
   * Start-up, before any network: every model comes back on its last committed active slot, its
   * file re-hashed first. An unfinished switch (pending slot) is dropped; a missing or damaged
   * active file falls back to the previous slot. What is loaded is what gets reported.
   */
  async start(): Promise<void> {
    for (const row of this.store.allSlots()) {
      let slots: ModelSlots = { ...row, pending: null };
      if (row.pending) this.#logger.warn({ model: row.model, version: row.pending.version }, 'switch was not committed before the restart: staying on the active slot');
      let code: string | undefined;
      if (slots.active && !(await this.#loadFromCache(row.model, slots.active))) {
        code = 'FLT_OTA_HASH_MISMATCH';
        this.#event('ota.failed', { model: row.model, version: slots.active.version, code, phase: 'restart' });
        slots = { ...slots, active: null };
      }
      if (!slots.active && slots.previous) {
        const prev = slots.previous;
        slots = { ...slots, previous: null };
        if (await this.#loadFromCache(row.model, prev)) slots = { ...slots, active: prev, activeHealthy: true };
      } else if (slots.active && slots.previous && (await this.cache.sizeOf(slots.previous.sha256)) !== slots.previous.length) {
        slots = { ...slots, previous: null };
      }
      this.store.saveSlots(slots);
      const active = slots.active;
      if (!active) {
        this.#set(row.model, { version: null, state: 'failed', error: code ?? 'FLT_OTA_HASH_MISMATCH' });
        continue;
      }
      if (code) this.#set(row.model, { version: active.version, state: 'failed', error: code, provider: this.#providerOf(row.model) });
      else this.#set(row.model, { version: active.version, state: slots.activeHealthy ? 'healthy' : 'activated', provider: this.#providerOf(row.model) });
      if (!slots.activeHealthy && !code) this.#startHealthJob(row.model, jobKey(active));
    }
    this.#publish();
    this.#scheduleHealthReport();
  }

  /** DesiredStateApplier: one model at a time, each step reported; returns the models as they stand. */
  async apply(desired: DesiredState): Promise<ReportedModels> {
    if (this.#closing) throw new FlotillaError('FLT_AGENT_CLOSED', 'model manager is closed');
    this.#generation = desired.generation;
    this.#desiredNames = Object.keys(desired.models);
    for (const slots of this.store.allSlots()) {
      if (!(slots.model in desired.models)) await this.#remove(slots.model);
    }
    for (const [name, entry] of Object.entries(desired.models)) {
      await this.#reconcile(name, entry);
    }
    return this.models();
  }

  /** Resolves when no background job (health window, deferred activation, retry) is running. */
  async idle(): Promise<void> {
    while (this.#jobs.size > 0) await Promise.allSettled([...this.#jobs.values()].map((j) => j.done));
  }

  /** Cancels background jobs and waits for them. Leaves the inference service to its owner. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#healthTimer) this.#timers.clearTimeout(this.#healthTimer);
      for (const job of this.#jobs.values()) job.abort.abort();
      await this.idle();
      if (this.#ownsDb) this.#db.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Pins the server's signing keys at first use and applies rotations published since. */
  async ensureTrust(): Promise<void> {
    const client = this.#requireClient();
    const now = this.#timers.now();
    if (!this.trust.pinned) {
      const { keys, rotations } = await client.keys();
      this.trust.pin(keys, rotations, now);
      this.#logger.info({ keys: this.trust.keys().size }, 'pinned the release-signing keys (first use)');
      return;
    }
    await this.#refreshRotations();
  }

  async #refreshRotations(): Promise<void> {
    const items = await this.#requireClient().rotations(this.trust.rotationSeq);
    try {
      const applied = this.trust.applyRotations(items, this.#timers.now());
      if (applied > 0) this.#logger.info({ applied, seq: this.trust.rotationSeq }, 'applied key rotations');
    } catch (err) {
      // A rotation the pinned keys did not sign is refused; the pinned set stays as it was.
      this.#logger.error({ code: (err as FlotillaError).code, err: (err as Error).message }, 'key rotation refused');
      throw err;
    }
  }

  // ---- per model ---------------------------------------------------------------------------

  async #reconcile(name: string, entry: DesiredEntry): Promise<void> {
    const key = jobKey(entry);
    const job = this.#jobs.get(name);
    if (job) {
      if (job.key === key) {
        // The same entry again under a new generation (a rollout retry writes one) while a passing
        // failure waits for its retry: report the wait, not the old failure, so the server counts
        // one failed attempt per real attempt instead of one per generation it writes.
        if (job.retry) this.#set(name, { ...this.#serving(name), state: 'pending', target: entry.version });
        return;
      }
      job.abort.abort();
      await job.done;
    }
    try {
      await this.#reconcileNow(name, entry, key);
      this.#retries.delete(name);
    } catch (err) {
      this.#onFailure(name, entry, key, err);
    }
  }

  async #reconcileNow(name: string, entry: DesiredEntry, key: string, signal?: AbortSignal): Promise<void> {
    const want = entry.version;
    let slots = this.store.slots(name);
    if (slots.pending && slots.pending.version !== want) {
      await this.#dropStaged(name, slots.pending.version);
      slots = { ...slots, pending: null };
      this.store.saveSlots(slots);
    }
    if (slots.active?.version === want) {
      if (this.#servingVersion(name) !== want && !(await this.#loadFromCache(name, slots.active))) {
        throw new FlotillaError('FLT_OTA_HASH_MISMATCH', `cached file of ${name}@${want} is missing or damaged`);
      }
      if (slots.activeHealthy) this.#set(name, { version: want, state: 'healthy', provider: this.#providerOf(name) });
      else {
        this.#set(name, { version: want, state: 'activated', provider: this.#providerOf(name) });
        this.#startHealthJob(name, key);
      }
      return;
    }
    const failed = this.store.failed(name, want);
    if (failed) {
      this.#set(name, { ...this.#serving(name), state: 'failed', error: failed.code, target: want });
      return;
    }

    const from = slots.active?.version ?? null;
    this.#event('ota.notified', { model: name, version: want, from, generation: this.#generation ?? null });
    this.#set(name, { ...this.#serving(name), state: 'pending', target: want });

    // A revert to the version the previous slot still holds needs no manifest and no download: its
    // file was verified when it was installed and is re-hashed here.
    let candidate: SlotEntry | undefined;
    let golden: Golden | undefined;
    if (slots.previous?.version === want && (await this.#verifyCached(slots.previous))) {
      candidate = slots.previous;
    } else {
      const fetched = await this.#fetchAndVerify(name, entry, signal);
      candidate = fetched.entry;
      golden = fetched.golden;
    }

    const decision = decideActivation(activationWindowOf(entry as Record<string, unknown>), this.#timers.now());
    if (decision.kind === 'wait') {
      this.#set(name, { ...this.#serving(name), state: 'verified', target: want, activateAfter: decision.at });
      const c = candidate;
      const g = golden;
      this.#startJob(name, key, async (jobSignal) => {
        await sleep(this.#timers, decision.ms, jobSignal);
        if (jobSignal.aborted) return;
        await this.#install(name, c, g, key, shadowGateOf(entry), jobSignal, abSplitOf(entry));
      });
      return;
    }
    if (decision.kind === 'missed') {
      // The window closed before the file was ready: wait for the server to name the next one.
      this.#set(name, { ...this.#serving(name), state: 'verified', target: want, activateBefore: decision.before, waiting: 'maintenance-window' });
      return;
    }
    await this.#install(name, candidate, golden, key, shadowGateOf(entry), signal, abSplitOf(entry));
  }

  async #fetchAndVerify(name: string, entry: DesiredEntry, signal?: AbortSignal): Promise<{ entry: SlotEntry; golden: Golden | undefined }> {
    const client = this.#requireClient();
    const want = entry.version;
    await this.ensureTrust();
    const fetched = await client.release(name, want);
    const verify = (): VerifiedRelease => {
      const last = this.store.lastAccepted(name);
      return verifyRelease(fetched.release, {
        trustedKeys: this.trust.keys(),
        now: this.#timers.now(),
        expect: { model: name, version: want },
        ...(last ? { lastAcceptedCounter: last.releaseCounter, lastAcceptedDigest: last.digest } : {}),
      });
    };
    let verified: VerifiedRelease;
    try {
      verified = verify();
    } catch (err) {
      // Signed by a key this device has not heard of yet: catch up on rotations once, then judge again.
      if (!(err instanceof FlotillaError) || err.code !== 'FLT_RELEASE_UNKNOWN_KEY') throw err;
      await this.#refreshRotations();
      verified = verify();
    }
    const { manifest, digest } = verified;

    // Preflight 1: hardware. Refused before a byte is downloaded.
    const inventory = this.#host?.inventory();
    if (!inventory) throw new FlotillaError('FLT_OTA_INCOMPATIBLE', 'the device inventory is unknown, so no variant can be chosen');
    let variant: ReleaseVariant;
    let provider: ExecutionProvider;
    const hinted = typeof entry.variant === 'string' ? manifest.variants.find((v) => v.id === entry.variant) : undefined;
    if (hinted) {
      variant = hinted;
      provider = assertVariantCompatible(hinted, inventory);
    } else {
      const resolution = resolveVariant(manifest, inventory);
      if (!resolution.ok) throw new FlotillaError('FLT_OTA_INCOMPATIBLE', resolution.explanation.why, { candidates: resolution.explanation.candidates });
      variant = resolution.variant;
      provider = resolution.provider;
    }
    const expected = expectedArtifact(manifest, variant.id);
    const slot: SlotEntry = {
      version: want,
      sha256: expected.sha256,
      length: expected.length,
      format: variant.format,
      provider,
      variantId: variant.id,
      releaseCounter: manifest.releaseCounter,
      digest,
    };
    const golden = goldenOf(fetched.metadata);

    if (await this.#verifyCached(slot)) {
      this.#event('ota.verified', { model: name, version: want, sha256: slot.sha256, length: slot.length, variant: variant.id, cached: true });
      this.#set(name, { ...this.#serving(name), state: 'verified', target: want });
      return { entry: slot, golden };
    }

    // Preflight 2: disk. Old files go first (the active and previous slots of every model stay).
    await this.cache.gc(this.#keptHashes(slot.sha256));
    const partial = await this.cache.partialSize(slot.sha256);
    const free = await this.#freeBytes(this.cache.root);
    const need = slot.length - partial + this.config.reserveBytes;
    if (free < need) throw new FlotillaError('FLT_OTA_DISK_FULL', `need ${need} free bytes for ${name}@${want}, have ${free}`, { need, free });

    this.#set(name, { ...this.#serving(name), state: 'downloading', target: want, bytes: partial, total: slot.length });
    this.#event('ota.downloading', { model: name, version: want, bytes: partial, total: slot.length });
    this.#lastProgressAt.set(name, this.#timers.now());
    const result = await downloadArtifact({
      url: client.artifactUrl(slot.sha256),
      headers: client.authHeaders(),
      expected: { sha256: slot.sha256, length: slot.length },
      partialPath: this.cache.partialPathFor(slot.sha256),
      finalPath: this.cache.pathFor(slot.sha256),
      timers: this.#timers,
      stallMs: this.config.download.stallMs,
      maxAttempts: this.config.download.maxAttempts,
      backoffMs: this.config.download.backoffMs,
      maxBackoffMs: this.config.download.maxBackoffMs,
      transport: this.config.download.transport,
      ...(signal ? { signal } : {}),
      onProgress: (bytes, total) => this.#onProgress(name, want, bytes, total),
    });
    this.#event('ota.verified', {
      model: name,
      version: want,
      sha256: slot.sha256,
      length: slot.length,
      variant: variant.id,
      resumedFrom: result.resumedFrom,
      bytesFetched: result.bytesFetched,
    });
    this.#set(name, { ...this.#serving(name), state: 'verified', target: want });
    return { entry: slot, golden };
  }

  /**
   * Load, warm up, self-test, (hold in shadow when the entry has a gate), switch, commit; then the
   * health window runs as a background job. Without a job signal the shadow hold becomes the
   * model's background job, so apply() does not wait for live traffic.
   */
  async #install(name: string, candidate: SlotEntry, golden: Golden | undefined, key: string, shadow: ShadowGate | undefined, signal?: AbortSignal, ab?: AbSplit): Promise<void> {
    const slots = this.store.slots(name);
    this.store.saveSlots({ ...slots, pending: candidate });
    const status = this.#inference.status().find((s) => s.model === name);
    const fromVersion = status?.active?.version ?? null;
    const quickRevert = status?.previous?.version === candidate.version;
    if (!quickRevert) {
      try {
        await this.#inference.stage(this.#spec(name, candidate), golden ? { golden } : {});
      } catch (err) {
        const slotsNow = this.store.slots(name);
        this.store.saveSlots({ ...slotsNow, pending: null });
        const code = errorCode(err);
        throw new FlotillaError(code === 'FLT_OTA_SELFTEST_FAILED' ? code : 'FLT_OTA_LOAD_FAILED', (err as Error).message);
      }
      this.#event('ota.installed', { model: name, version: candidate.version, provider: this.#stagedProvider(name) ?? candidate.provider });
      this.#set(name, { ...this.#serving(name), state: 'installed', target: candidate.version });
    }
    if (signal?.aborted) {
      await this.#dropStaged(name, candidate.version);
      this.store.saveSlots({ ...this.store.slots(name), pending: null });
      return;
    }
    // A revert to the previous slot skips the gate: that version has served here before.
    if (shadow && !quickRevert) {
      if (!signal) {
        this.#startJob(name, key, async (jobSignal) => {
          if (await this.#holdInShadow(name, candidate, shadow, jobSignal)) await this.#switchTo(name, candidate, false, fromVersion);
        });
        return;
      }
      if (!(await this.#holdInShadow(name, candidate, shadow, signal))) return;
    }
    // An A/B split needs a control to split with; with none (first install) the candidate just activates.
    if (ab && !quickRevert && fromVersion !== null && this.#inference.startAb) {
      if (signal) await this.#holdInAb(name, candidate, ab, signal);
      else this.#startJob(name, key, (jobSignal) => this.#holdInAb(name, candidate, ab, jobSignal));
      return;
    }
    await this.#switchTo(name, candidate, quickRevert, fromVersion);
  }

  /**
   * Serves `split.share` of live requests from the staged candidate and reports both arms as they
   * grow, until the desired entry changes (the server's A/B gate decided): the job is cancelled, the
   * split stops and the candidate is unloaded; the next entry activates it or names another version.
   */
  async #holdInAb(name: string, candidate: SlotEntry, split: AbSplit, signal: AbortSignal): Promise<void> {
    const version = candidate.version;
    this.#inference.startAb!(name, split);
    this.#event('ota.ab', { model: name, version, share: split.share, sticky: split.sticky ?? null });
    let shown = -1;
    let shownAt = -Infinity;
    // Counters go up at most every pollMs; the report is re-published when they moved and at most every abReportMs.
    const reportMs = this.config.abReportMs ?? 1_000;
    const every = Math.max(10, Math.min(this.config.health.pollMs, reportMs));
    for (;;) {
      const report = this.#inference.abReport!(name);
      if (!report || report.candidate.version !== version) {
        this.#inference.stopAb!(name);
        throw new FlotillaError('FLT_OTA_LOAD_FAILED', `the A/B split of ${name}@${version} stopped before the server decided`);
      }
      const served = report.control.requests + report.candidate.requests;
      const now = this.#timers.now();
      if (served !== shown && now - shownAt >= reportMs) {
        shown = served;
        shownAt = now;
        this.#set(name, { ...this.#serving(name), state: 'installed', target: version, waiting: 'ab', ab: report });
      }
      await sleep(this.#timers, every, signal);
      if (signal.aborted) break;
    }
    this.#inference.stopAb!(name);
    await this.#dropStaged(name, version);
    this.store.saveSlots({ ...this.store.slots(name), pending: null });
  }

  /**
   * Mirrors live requests to the staged candidate until the gate has `minSamples`, reporting the run
   * as it grows. True: the candidate agreed enough and may be activated. False: it was refused
   * (unloaded, failure recorded as FLT_OTA_SHADOW_DISAGREED) or the hold was cancelled.
   */
  async #holdInShadow(name: string, candidate: SlotEntry, gate: ShadowGate, signal: AbortSignal): Promise<boolean> {
    const version = candidate.version;
    this.#inference.startShadow(name, { share: gate.share });
    this.#event('ota.shadow', { model: name, version, share: gate.share, minSamples: gate.minSamples, minAgreement: gate.minAgreement });
    let shown = -1;
    let report: ShadowReport | null = null;
    for (;;) {
      report = this.#inference.shadowReport(name);
      if (!report || report.candidate !== version) {
        this.#inference.stopShadow(name);
        throw new FlotillaError('FLT_OTA_LOAD_FAILED', `the shadow run of ${name}@${version} stopped before its gate decided`);
      }
      if (report.samples !== shown) {
        shown = report.samples;
        this.#set(name, { ...this.#serving(name), state: 'installed', target: version, waiting: 'shadow', shadow: report });
      }
      if (report.samples >= gate.minSamples) break;
      await sleep(this.#timers, this.config.health.pollMs, signal);
      if (signal.aborted) {
        this.#inference.stopShadow(name);
        await this.#dropStaged(name, version);
        this.store.saveSlots({ ...this.store.slots(name), pending: null });
        return false;
      }
    }
    const final = this.#inference.stopShadow(name) ?? report;
    const agreement = final.agreement ?? 0;
    if (agreement >= gate.minAgreement) {
      this.#event('ota.shadow-passed', { model: name, version, samples: final.samples, agreement, meanAbsDiff: final.meanAbsDiff });
      return true;
    }
    const code = 'FLT_OTA_SHADOW_DISAGREED';
    await this.#dropStaged(name, version);
    this.store.saveSlots({ ...this.store.slots(name), pending: null });
    this.store.recordFailure(name, version, code);
    this.#logger.warn({ model: name, version, samples: final.samples, agreement, minAgreement: gate.minAgreement }, 'candidate disagreed in its shadow run: not activated');
    this.#event('ota.failed', { model: name, version, code, samples: final.samples, agreement, meanAbsDiff: final.meanAbsDiff, minAgreement: gate.minAgreement });
    this.#set(name, { ...this.#serving(name), state: 'failed', error: code, target: version, shadow: final });
    return false;
  }

  /** The switch and its commit, then the health window. */
  async #switchTo(name: string, candidate: SlotEntry, quickRevert: boolean, fromVersion: string | null): Promise<void> {
    // The switch: one assignment in the inference host (in-flight requests finish on the old
    // version), then one transaction that makes it the committed active slot.
    if (quickRevert) this.#inference.rollback(name);
    else this.#inference.activate(name);
    this.store.commitSwitch(name);
    // The version two switches back is no longer a rollback target: its file can go.
    await this.cache.gc(this.#keptHashes(candidate.sha256)).catch(() => undefined);
    this.#event('ota.activated', { model: name, version: candidate.version, from: fromVersion, provider: this.#providerOf(name) ?? candidate.provider });
    this.#set(name, { version: candidate.version, state: 'activated', provider: this.#providerOf(name) ?? candidate.provider });
    this.#startHealthJob(name, jobKey({ version: candidate.version }), true);
  }

  #startHealthJob(name: string, key: string, replace = false): void {
    const existing = this.#jobs.get(name);
    if (existing && !replace) return;
    this.#startJob(name, key, async (signal) => {
      const active = this.store.slots(name).active;
      if (!active) return;
      const verdict = await watchHealth({
        cfg: this.config.health,
        timers: this.#timers,
        version: active.version,
        health: () => this.#healthOf(name),
        signal,
      });
      if (verdict.ok === 'aborted') return;
      if (verdict.ok) {
        const now = this.store.slots(name);
        if (now.active?.version !== active.version) return;
        this.store.saveSlots({ ...now, activeHealthy: true });
        const s = verdict.snapshot;
        this.#event('ota.healthy', { model: name, version: active.version, requests: s?.requests ?? 0, errors: s?.errors ?? 0, p99Ms: s?.p99Ms ?? null });
        this.#set(name, { version: active.version, state: 'healthy', provider: this.#providerOf(name) });
        return;
      }
      await this.#rollbackAfterHealth(name, active, verdict.reason);
    });
  }

  async #rollbackAfterHealth(name: string, failed: SlotEntry, reason: string): Promise<void> {
    const slots = this.store.slots(name);
    const prev = slots.previous;
    const status = this.#inference.status().find((s) => s.model === name);
    let restored = false;
    if (prev && status?.previous?.version === prev.version) {
      this.#inference.rollback(name);
      restored = true;
    } else if (prev) {
      restored = await this.#loadFromCache(name, prev);
    }
    await this.#inference.unload(name, failed.version).catch(() => undefined);
    if (restored) this.store.commitRollback(name);
    else this.store.saveSlots({ model: name, active: null, previous: null, pending: null, activeHealthy: false });
    this.store.recordFailure(name, failed.version, 'FLT_OTA_HEALTH_FAILED');
    this.#logger.warn({ model: name, version: failed.version, reason, restored: restored ? prev?.version : null }, 'health window failed: rolled back');
    this.#event('ota.failed', { model: name, version: failed.version, code: 'FLT_OTA_HEALTH_FAILED', reason, restored: restored ? (prev?.version ?? null) : null });
    this.#set(name, {
      version: restored ? (prev?.version ?? null) : null,
      state: 'failed',
      error: 'FLT_OTA_HEALTH_FAILED',
      target: failed.version,
      ...(restored ? { provider: this.#providerOf(name) } : {}),
    });
  }

  #onFailure(name: string, entry: DesiredEntry, key: string, err: unknown): void {
    const code = errorCode(err);
    const message = (err as Error)?.message ?? String(err);
    if (STICKY.has(code)) this.store.recordFailure(name, entry.version, code);
    this.#logger.warn({ model: name, version: entry.version, code, err: message }, 'model install failed');
    this.#event('ota.failed', { model: name, version: entry.version, code, reason: message.slice(0, 512) });
    this.#set(name, { ...this.#serving(name), state: 'failed', error: code.slice(0, 64), target: entry.version });
    if (PASSING.has(code) && !this.#closing) {
      const n = this.#retries.get(name) ?? 0;
      this.#retries.set(name, n + 1);
      const delay = this.config.retryMs * 2 ** Math.min(n, 4);
      this.#startJob(
        name,
        key,
        async (signal) => {
          await sleep(this.#timers, delay, signal);
          if (signal.aborted) return;
          // This job is the model's job while it runs, so the retry must not wait for itself.
          this.#jobs.delete(name);
          await this.#reconcile(name, entry);
        },
        { retry: true },
      );
    }
  }

  #startJob(name: string, key: string, run: (signal: AbortSignal) => Promise<void>, opts: { retry?: boolean } = {}): void {
    const previous = this.#jobs.get(name);
    previous?.abort.abort();
    const abort = new AbortController();
    const job: Job = { key, abort, done: Promise.resolve(), ...(opts.retry ? { retry: true } : {}) };
    job.done = (async () => {
      if (previous) await previous.done;
      try {
        await run(abort.signal);
      } catch (err) {
        if (!abort.signal.aborted) this.#onFailure(name, { version: JSON.parse(key)[0] as string }, key, err);
      } finally {
        if (this.#jobs.get(name) === job) this.#jobs.delete(name);
      }
    })();
    this.#jobs.set(name, job);
  }

  async #remove(name: string): Promise<void> {
    const job = this.#jobs.get(name);
    job?.abort.abort();
    await job?.done;
    const status = this.#inference.status().find((s) => s.model === name);
    if (status) await this.#inference.unload(name).catch(() => undefined);
    this.store.saveSlots({ model: name, active: null, previous: null, pending: null, activeHealthy: false });
    this.#status.delete(name);
    this.#event('ota.removed', { model: name });
  }

  // ---- helpers -------------------------------------------------------------------------------

  #requireClient(): ReleaseClient {
    if (!this.#client) throw new FlotillaError('FLT_OTA_UNTRUSTED', 'model manager is not attached to an agent');
    return this.#client;
  }

  #spec(name: string, entry: SlotEntry): LoadSpec {
    return { model: name, version: entry.version, path: this.cache.pathFor(entry.sha256), format: entry.format, providers: providersFor(entry) };
  }

  /** Re-hashes a cached file against its slot entry; false when it is missing or damaged. */
  async #verifyCached(entry: SlotEntry): Promise<boolean> {
    if ((await this.cache.sizeOf(entry.sha256)) !== entry.length) return false;
    try {
      await verifyFile(this.cache.pathFor(entry.sha256), { sha256: entry.sha256, length: entry.length });
      return true;
    } catch {
      await this.cache.remove(entry.sha256);
      return false;
    }
  }

  /** Verifies and loads a cached slot as the model's active version (start-up, fallback). */
  async #loadFromCache(name: string, entry: SlotEntry): Promise<boolean> {
    if (!(await this.#verifyCached(entry))) return false;
    try {
      await this.#inference.load(this.#spec(name, entry));
      return true;
    } catch (err) {
      this.#logger.error({ model: name, version: entry.version, err: (err as Error).message }, 'cached model failed to load');
      return false;
    }
  }

  async #dropStaged(name: string, version: string): Promise<void> {
    const status = this.#inference.status().find((s) => s.model === name);
    if (status?.staged?.version === version) await this.#inference.unload(name, version).catch(() => undefined);
  }

  #keptHashes(extra: string): Set<string> {
    const keep = new Set<string>([extra]);
    for (const s of this.store.allSlots()) for (const e of [s.active, s.previous, s.pending]) if (e) keep.add(e.sha256);
    return keep;
  }

  /** The serving version's counters in the protocol's shape; undefined when the inference host has none for `version`. */
  #reportedHealth(name: string, version: string): ModelHealth | undefined {
    const s = this.#healthOf(name);
    if (!s || s.version !== version) return undefined;
    return { since: Math.max(0, Math.round(s.since)), requests: s.requests, errors: s.errors, p50Ms: s.p50Ms, p95Ms: s.p95Ms };
  }

  /**
   * Re-reports every `healthReportMs` when a serving version's request count moved, so the server sees
   * fresh counters during a bake (state changes alone would leave them as they were at activation).
   */
  #scheduleHealthReport(): void {
    if (this.#closing || this.#healthTimer !== undefined || this.config.healthReportMs <= 0) return;
    this.#healthTimer = this.#timers.setTimeout(() => {
      this.#healthTimer = undefined;
      if (this.#closing) return;
      let moved = false;
      for (const [name, model] of this.#status) {
        const requests = model.version === null ? 0 : (this.#reportedHealth(name, model.version)?.requests ?? 0);
        if (requests !== (this.#reportedRequests.get(name) ?? 0)) moved = true;
      }
      if (moved) this.#publish();
      this.#scheduleHealthReport();
    }, this.config.healthReportMs);
    this.#healthTimer.unref?.();
  }

  #healthOf(name: string) {
    try {
      return this.#inference.health(name);
    } catch {
      return null;
    }
  }

  #servingVersion(name: string): string | null {
    return this.#inference.status().find((s) => s.model === name)?.active?.version ?? null;
  }

  #providerOf(name: string): string | undefined {
    return this.#inference.status().find((s) => s.model === name)?.active?.provider;
  }

  #stagedProvider(name: string): string | undefined {
    return this.#inference.status().find((s) => s.model === name)?.staged?.provider;
  }

  /** What really serves now: the version and provider the reported state must name. */
  #serving(name: string): { version: string | null; provider?: string } {
    const version = this.#servingVersion(name);
    const provider = this.#providerOf(name);
    return provider ? { version, provider } : { version };
  }

  #onProgress(name: string, version: string, bytes: number, total: number): void {
    const now = this.#timers.now();
    const last = this.#lastProgressAt.get(name) ?? 0;
    if (bytes < total && now - last < this.config.download.progressIntervalMs) return;
    this.#lastProgressAt.set(name, now);
    this.#event('ota.downloading', { model: name, version, bytes, total });
    this.#set(name, { ...this.#serving(name), state: 'downloading', target: version, bytes, total });
  }

  #set(name: string, model: ReportedModel): void {
    this.#status.set(name, model);
    this.#publish();
  }

  #publish(): void {
    if (!this.#host || this.#closing) return;
    try {
      const models = this.models();
      for (const [name, m] of Object.entries(models)) this.#reportedRequests.set(name, m.health?.requests ?? 0);
      this.#host.reportModels(models, this.#generation);
    } catch (err) {
      this.#logger.debug({ err: (err as Error).message }, 'progress report not published');
    }
  }

  #event(kind: string, data: EventData): void {
    if (!this.#host) return;
    try {
      this.#host.enqueueEvent(kind, data);
    } catch (err) {
      this.#logger.debug({ kind, err: (err as Error).message }, 'ota event not recorded');
    }
  }
}
