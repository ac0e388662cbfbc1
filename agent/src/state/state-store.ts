import type { Statement } from 'better-sqlite3';
import type { DesiredState, ReportedState } from '@flotilla/protocol';
import type { AgentDatabase } from '../storage/database.ts';

/** The last desired state received and the last reported state produced, kept across restarts. */
export class StateStore {
  readonly #getDesired: Statement;
  readonly #putDesired: Statement;
  readonly #getReported: Statement;
  readonly #putReported: Statement;
  readonly #now: () => number;

  constructor(db: AgentDatabase, now: () => number = Date.now) {
    this.#now = now;
    this.#getDesired = db.prepare('SELECT doc FROM desired_state WHERE id = 1');
    this.#putDesired = db.prepare(
      'INSERT INTO desired_state (id, generation, doc, received_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, doc = excluded.doc, received_at = excluded.received_at',
    );
    this.#getReported = db.prepare('SELECT applied_generation, models FROM reported_state WHERE id = 1');
    this.#putReported = db.prepare(
      'INSERT INTO reported_state (id, applied_generation, models, updated_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET applied_generation = excluded.applied_generation, models = excluded.models, updated_at = excluded.updated_at',
    );
  }

  desired(): DesiredState | undefined {
    const row = this.#getDesired.get() as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as DesiredState) : undefined;
  }

  saveDesired(desired: DesiredState): void {
    this.#putDesired.run(desired.generation, JSON.stringify(desired), this.#now());
  }

  reported(): ReportedState | undefined {
    const row = this.#getReported.get() as { applied_generation: number; models: string } | undefined;
    return row ? { appliedGeneration: row.applied_generation, models: JSON.parse(row.models) as ReportedState['models'] } : undefined;
  }

  saveReported(reported: ReportedState): void {
    this.#putReported.run(reported.appliedGeneration, JSON.stringify(reported.models), this.#now());
  }
}
