import type { Logger } from 'pino';
import { Compile } from 'typebox/compile';
import { ReportedState as ReportedStateSchema, type DesiredState, type ReportedState } from '@flotilla/protocol';
import type { DesiredStateApplier } from './applier.ts';
import type { StateStore } from './state-store.ts';

const checkReported = Compile(ReportedStateSchema);

export interface ReconcilerOptions {
  store: StateStore;
  applier: DesiredStateApplier;
  logger: Logger;
  /** Publishes a reported state (the owner decides whether it can go out now). */
  report: (reported: ReportedState) => void;
  /** Told of every accepted desired state before it is applied (heartbeat interval override). */
  onDesired?: (desired: DesiredState) => void;
}

/**
 * Desired → applied → reported. A desired state is persisted before it is applied; states are
 * applied one at a time, and a generation not newer than the last applied (or already waiting)
 * one is ignored, so redelivered or stale retained messages change nothing. While one apply runs,
 * only the newest waiting desired state is kept.
 */
export class StateReconciler {
  readonly #opts: ReconcilerOptions;
  #reported: ReportedState | undefined;
  #running: Promise<void> | undefined;
  #waiting: DesiredState | undefined;
  #closed = false;

  constructor(opts: ReconcilerOptions) {
    this.#opts = opts;
    this.#reported = opts.store.reported();
  }

  /** The last reported state, or undefined before the first desired state was ever applied. */
  get reported(): ReportedState | undefined {
    return this.#reported;
  }

  /**
   * Replaces the models of the last applied generation (OTA progress that finishes after apply()
   * returned: a health verdict, a rollback, a deferred activation). Validated and persisted like an
   * applied report; false when invalid or when `reported` is not for the last applied generation.
   */
  replaceReported(reported: ReportedState): boolean {
    if (this.#closed || !this.#reported || reported.appliedGeneration !== this.#reported.appliedGeneration) return false;
    if (!checkReported.Check(reported)) return false;
    this.#opts.store.saveReported(reported);
    this.#reported = reported;
    return true;
  }

  /** A stored desired state newer than the last applied one (after a crash or failed apply). */
  pendingDesired(): DesiredState | undefined {
    const desired = this.#opts.store.desired();
    return desired && !this.#isApplied(desired.generation) ? desired : undefined;
  }

  /** Accepts a validated desired state. Returns false when it is not newer than what was applied. */
  submit(desired: DesiredState): boolean {
    if (this.#closed) return false;
    if (this.#isApplied(desired.generation) || (this.#waiting && desired.generation <= this.#waiting.generation)) {
      this.#opts.logger.debug(
        { generation: desired.generation, applied: this.#reported?.appliedGeneration },
        'desired state not newer than applied, ignored',
      );
      return false;
    }
    this.#opts.store.saveDesired(desired);
    this.#opts.onDesired?.(desired);
    this.#waiting = desired;
    this.#running ??= this.#drain();
    return true;
  }

  /** Tries again a stored desired state that was never applied (start-up, reconnect). */
  retryPending(): void {
    const pending = this.pendingDesired();
    if (pending && !this.#closed && !this.#running) {
      this.#waiting = pending;
      this.#running = this.#drain();
    }
  }

  /** Resolves when nothing is being applied. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#waiting = undefined;
    return this.idle();
  }

  #isApplied(generation: number): boolean {
    return this.#reported !== undefined && generation <= this.#reported.appliedGeneration;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting && !this.#closed) {
        const desired = this.#waiting;
        this.#waiting = undefined;
        await this.#applyOne(desired);
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #applyOne(desired: DesiredState): Promise<void> {
    let models: ReportedState['models'];
    try {
      models = await this.#opts.applier.apply(desired);
    } catch (err) {
      this.#opts.logger.error({ generation: desired.generation, err: (err as Error).message }, 'applying desired state failed');
      return;
    }
    if (this.#closed) return;
    const reported: ReportedState = { appliedGeneration: desired.generation, models };
    if (!checkReported.Check(reported)) {
      // Never persist or publish what the server would refuse; the generation stays unapplied.
      const first = checkReported.Errors(reported)[0];
      this.#opts.logger.error({ generation: desired.generation, where: first?.instancePath, problem: first?.message }, 'applier returned an invalid reported state');
      return;
    }
    this.#opts.store.saveReported(reported);
    this.#reported = reported;
    this.#opts.logger.info({ generation: desired.generation }, 'desired state applied');
    this.#opts.report(reported);
  }
}
