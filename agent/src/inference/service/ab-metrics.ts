import { Counter, type Registry } from 'prom-client';
import type { AbArm } from '../ab-split.ts';

/** A/B split metrics, on the registry the agent passes in (never prom-client's global one). */
export class AbMetrics {
  readonly requests: Counter<'model' | 'version' | 'arm'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'flotilla_agent_ab_requests_total',
      help: 'Requests answered while an A/B split runs, by model, the version that served and its arm (control or candidate)',
      labelNames: ['model', 'version', 'arm'] as const,
      registers: [registry],
    });
  }

  served(model: string, version: string, arm: AbArm): void {
    this.requests.inc({ model, version, arm });
  }
}
