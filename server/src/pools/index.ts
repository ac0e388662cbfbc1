export { PoolStore, DEFAULT_POOL_WEIGHT } from './pool-store.ts';
export { PoolAdmin, type PoolAdminDeps } from './pool-admin.ts';
export { routesFor, escalationFor, MAX_ROUTES, MAX_ESCALATION_MODELS } from './routing.ts';
