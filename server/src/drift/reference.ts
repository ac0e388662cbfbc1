import type { DriftSummary } from '@flotilla/protocol';
import type { RegistryServices } from '../registry/index.ts';
import type { ServerMetrics } from '../metrics/server-metrics.ts';
import type { DriftGauges } from './drift-tracker.ts';

/** The reference a version was registered with (`metadata.driftReference`); undefined when absent or unknown. */
export function driftReferenceOf(registry: RegistryServices, model: string, version: string): DriftSummary | undefined {
  const row = registry.models.versionRow(model, version);
  if (!row) return undefined;
  return (JSON.parse(row.metadata) as { driftReference?: DriftSummary }).driftReference;
}

/** The tracker's view of the server's Prometheus metrics. */
export function driftGauges(metrics: ServerMetrics): DriftGauges {
  return {
    setPsi(model, version, scope, psi) {
      if (psi === null) metrics.driftPsi.remove({ model, version, scope });
      else metrics.driftPsi.set({ model, version, scope }, psi);
    },
    countEvent(model, version, kind) {
      metrics.driftEvents.inc({ model, version, kind });
    },
  };
}
