import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeviceStore } from '../fleet/device-store.ts';

/** Every server metric, on a registry owned by one server instance (tests run several side by side). */
export function createServerMetrics(registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'flotilla_server_' });
  const m = {
    registry,
    httpRequests: new Histogram({
      name: 'flotilla_http_request_duration_seconds',
      help: 'REST request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    enrollments: new Counter({
      name: 'flotilla_enrollments_total',
      help: 'Enrollment calls by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    deviceMessages: new Counter({
      name: 'flotilla_device_messages_total',
      help: 'Device messages accepted, by channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    deviceMessagesRejected: new Counter({
      name: 'flotilla_device_messages_rejected_total',
      help: 'Device messages refused by validation, by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    eventsStored: new Counter({
      name: 'flotilla_device_events_stored_total',
      help: 'Durable device events committed (first delivery only)',
      registers: [registry],
    }),
    eventsDuplicate: new Counter({
      name: 'flotilla_device_events_duplicate_total',
      help: 'Durable device events received again after they were committed (re-acknowledged, not stored twice)',
      registers: [registry],
    }),
    driftPsi: new Gauge({
      name: 'flotilla_drift_psi',
      help: 'Population stability index of live traffic against the version reference (scope: fleet, or the worst-scoring device); absent while too few rows',
      labelNames: ['model', 'version', 'scope'] as const,
      registers: [registry],
    }),
    driftEvents: new Counter({
      name: 'flotilla_drift_events_total',
      help: 'Devices crossing the drift threshold (detected) and coming back under it (cleared)',
      labelNames: ['model', 'version', 'kind'] as const,
      registers: [registry],
    }),
    devices: new Gauge({
      name: 'flotilla_devices',
      help: 'Devices by enrollment status and presence',
      labelNames: ['status', 'online'] as const,
      registers: [registry],
    }),
  };
  return m;
}

export type ServerMetrics = ReturnType<typeof createServerMetrics>;

/** Device counts come from the database at scrape time, so they can never drift from it. */
export function bindDeviceGauge(metrics: ServerMetrics, devices: DeviceStore): void {
  const gauge = metrics.devices as Gauge<'status' | 'online'> & { collect?: () => void };
  Object.defineProperty(gauge, 'collect', {
    value() {
      gauge.reset();
      for (const row of devices.countByStatus()) gauge.set({ status: row.status, online: row.online ? 'true' : 'false' }, row.n);
    },
  });
}
