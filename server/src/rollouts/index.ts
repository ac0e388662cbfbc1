export { RolloutEngine, type RolloutEngineDeps, type RolloutSummary, type StageFunnel, type DryRun, type TickResult } from './engine.ts';
export { RolloutScheduler, type SchedulerTimers } from './scheduler.ts';
export { noVariantResolver, variantResolverFromRegistry, type RolloutVariantResolver, type VariantChoice, type RegistryVariantLookup } from './variant-resolver.ts';
export type { DesiredPublisher } from './desired-writer.ts';
export { MaintenanceWindowSchedule } from './cron-window.ts';
export { cohortRank, cohortOrder, cumulativeSizes } from './cohorts.ts';
export { releaseCatalogFromRegistry, type ReleaseCatalog, type ReleaseStatus, type RegistryModelLookup } from './release-check.ts';
