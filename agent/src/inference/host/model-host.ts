import { FlotillaError } from '@flotilla/protocol';
import type { LoadedModel } from '../types.ts';
import { HealthWindow, type HealthSnapshot } from './health-window.ts';

/** What the inactive slot holds: a candidate never served yet, or the version a switch left behind. */
export type InactiveRole = 'staged' | 'previous';

export interface SwitchResult {
  model: string;
  /** Version active before the switch; null on the first activation. */
  from: string | null;
  to: string;
}

export interface ModelHostOptions {
  /** Clock for health windows (ms). */
  now?: () => number;
  /** Latency samples kept per health window. */
  maxSamples?: number;
}

/**
 * The A/B slots of one model. One slot is active and takes every new request; the other holds
 * either a staged candidate or the previous version, kept loaded for rollback. A switch is one
 * assignment on the event loop: the next request sees the new version, and requests already
 * holding the old one finish there (it stays loaded), so a switch fails no request.
 */
export class ModelHost {
  readonly model: string;
  private active: LoadedModel | undefined;
  private inactive: { loaded: LoadedModel; role: InactiveRole } | undefined;
  private window: HealthWindow | undefined;
  private readonly now: () => number;
  private readonly maxSamples: number;

  constructor(model: string, opts: ModelHostOptions = {}) {
    this.model = model;
    this.now = opts.now ?? (() => Date.now());
    this.maxSamples = opts.maxSamples ?? 4096;
  }

  get activeModel(): LoadedModel | undefined {
    return this.active;
  }

  get previousModel(): LoadedModel | undefined {
    return this.inactive?.role === 'previous' ? this.inactive.loaded : undefined;
  }

  get stagedModel(): LoadedModel | undefined {
    return this.inactive?.role === 'staged' ? this.inactive.loaded : undefined;
  }

  /** The active version, or the named version if either slot holds it. */
  select(version?: string): LoadedModel | undefined {
    if (version === undefined || this.active?.version === version) return this.active;
    return this.inactive?.loaded.version === version ? this.inactive.loaded : undefined;
  }

  /**
   * Puts a loaded candidate in the inactive slot. Whatever was there (an older previous version or
   * an earlier candidate) is unloaded once its in-flight requests finish.
   */
  async stage(loaded: LoadedModel): Promise<void> {
    if (loaded.model !== this.model) throw new FlotillaError('FLT_CONFLICT', `cannot stage ${loaded.model} in the slots of ${this.model}`);
    if (this.active?.version === loaded.version) {
      throw new FlotillaError('FLT_CONFLICT', `${this.model}@${loaded.version} is already active`);
    }
    const displaced = this.inactive?.loaded;
    this.inactive = { loaded, role: 'staged' };
    if (displaced && displaced !== loaded) await displaced.unload();
  }

  /** Switches to the staged candidate; the version it replaces becomes the previous one. */
  activate(): SwitchResult {
    if (this.inactive?.role !== 'staged') throw new FlotillaError('FLT_INFER_SLOT_EMPTY', `${this.model} has no staged version to activate`);
    return this.swap();
  }

  /** Switches back to the previous version; the version it replaces becomes the previous one. */
  rollback(): SwitchResult {
    if (this.inactive?.role !== 'previous') throw new FlotillaError('FLT_INFER_SLOT_EMPTY', `${this.model} has no previous version to roll back to`);
    return this.swap();
  }

  /** Counts a finished request toward the health window when the active version served it. */
  record(loaded: LoadedModel, latencyMs: number, errorCode?: string): void {
    if (loaded === this.active) this.window?.record(latencyMs, errorCode);
  }

  /** Requests, errors and latency percentiles of the active version since it became active. */
  health(): HealthSnapshot | undefined {
    return this.window?.snapshot();
  }

  /** Unloads the inactive slot (a rejected candidate, or a previous version no longer wanted). */
  async unloadInactive(): Promise<void> {
    const loaded = this.inactive?.loaded;
    this.inactive = undefined;
    await loaded?.unload();
  }

  /** Unloads the named version, or both slots. Unloading the active version leaves the model without one. */
  async unload(version?: string): Promise<void> {
    const targets: LoadedModel[] = [];
    if (this.inactive && (version === undefined || this.inactive.loaded.version === version)) {
      targets.push(this.inactive.loaded);
      this.inactive = undefined;
    }
    if (this.active && (version === undefined || this.active.version === version)) {
      targets.push(this.active);
      this.active = undefined;
      this.window = undefined;
    }
    await Promise.allSettled(targets.map((m) => m.unload()));
  }

  get empty(): boolean {
    return this.active === undefined && this.inactive === undefined;
  }

  private swap(): SwitchResult {
    const next = (this.inactive as { loaded: LoadedModel }).loaded;
    const from = this.active;
    this.active = next;
    this.inactive = from ? { loaded: from, role: 'previous' } : undefined;
    this.window = new HealthWindow(next.version, this.now(), this.maxSamples);
    return { model: this.model, from: from?.version ?? null, to: next.version };
  }
}
