import { Counter, type Registry } from 'prom-client';
import type { AnsweredBy } from './policy.ts';

/** Escalation metrics, on the registry the agent passes in (never prom-client's global one). */
export class EscalationMetrics {
  readonly escalations: Counter<'model' | 'version' | 'answered_by'>;

  constructor(registry: Registry) {
    this.escalations = new Counter({
      name: 'flotilla_agent_escalations_total',
      help: 'Requests sent on to a cloud pool, by the model version serving locally and who answered (cloud, or edge-fallback when the cloud did not in budget)',
      labelNames: ['model', 'version', 'answered_by'] as const,
      registers: [registry],
    });
  }

  /** Counts one answer; requests the edge answered without escalating are not escalations. */
  answered(model: string, version: string, answeredBy: AnsweredBy): void {
    if (answeredBy === 'edge') return;
    this.escalations.inc({ model, version, answered_by: answeredBy });
  }
}
