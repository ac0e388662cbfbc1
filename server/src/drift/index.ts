export { DriftTracker, type DriftGauges, type DriftTrackerDeps } from './drift-tracker.ts';
export { PSI_EPSILON, levelOf, mergeSummaries, psi, scoreSummary, type DriftThresholds } from './psi.ts';
export { driftGauges, driftReferenceOf } from './reference.ts';
export { driftRoutes } from './drift-routes.ts';
