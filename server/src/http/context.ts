import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema.ts';
import type { Db } from '../db/open.ts';
import type { ApiTokens } from '../auth/api-tokens.ts';
import type { EnrollmentTokens } from '../auth/enrollment-tokens.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Enrollment } from '../fleet/enrollment.ts';
import type { FleetAdmin } from '../fleet/fleet-admin.ts';
import type { DeviceStore } from '../fleet/device-store.ts';
import type { ServerMetrics } from '../metrics/server-metrics.ts';
import type { RolloutEngine } from '../rollouts/index.ts';
import type { RegistryServices } from '../registry/index.ts';
import type { PoolAdmin } from '../pools/index.ts';
import type { HardExampleStore } from '../hard-examples/index.ts';
import type { DriftTracker } from '../drift/drift-tracker.ts';
import type { FailureThrottle } from '../auth/failure-throttle.ts';

/** The services the REST routes call. Routes hold no state of their own. */
export interface HttpContext {
  config: Readonly<ServerConfig>;
  logger: Logger;
  db: Db;
  devices: DeviceStore;
  apiTokens: ApiTokens;
  enrollmentTokens: EnrollmentTokens;
  audit: AuditLog;
  enrollment: Enrollment;
  fleet: FleetAdmin;
  metrics: ServerMetrics;
  registry: RegistryServices;
  rollouts: RolloutEngine;
  /** Cloud pools and escalation policies (docs/escalation.md). */
  pools: PoolAdmin;
  hardExamples: HardExampleStore;
  /** Drift of live traffic per model version (docs/registry.md "Drift"); no drift routes without it. */
  drift?: DriftTracker;
  /** Failed-authentication throttling (docs/operations.md "Abuse guards"); none when left out. */
  authThrottle?: FailureThrottle;
  /** True while the server can serve: database open, broker listening, not shutting down. */
  isReady(): boolean;
}
