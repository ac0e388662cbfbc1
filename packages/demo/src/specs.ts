import type { EscalationPolicy, PoolBody, RolloutSpec } from '@flotilla/protocol';

/** Names and versions the demo uses: one edge model in three releases, one cloud model. */
export const DEMO = {
  model: 'mnist-edge',
  cloudModel: 'mnist-cloud',
  pool: 'lab-pool',
  region: 'lab',
  fleetLabel: { fleet: 'demo', region: 'lab' },
  devices: ['edge-1', 'edge-2', 'edge-3'],
  versions: { v1: '1.0.0', v2: '2.0.0', v3: '3.0.0' },
} as const;

const target = { labels: { fleet: DEMO.fleetLabel.fleet } };

/** v1 everywhere at once: how devices that have no model yet get their first one. */
export const v1Rollout: RolloutSpec & { id: string } = {
  id: 'mnist-edge-v1',
  name: 'first install of mnist-edge 1.0.0',
  target,
  model: DEMO.model,
  version: DEMO.versions.v1,
  stages: [{ percent: 100 }],
  perDeviceTimeoutSec: 120,
};

/**
 * v2 in three stages, one device, then two, then all, each device baking a second healthy
 * under live traffic before it counts. A failed device would abort and revert it.
 */
export const v2Rollout: RolloutSpec & { id: string } = {
  id: 'mnist-edge-v2',
  name: 'mnist-edge 2.0.0 (int8) in stages',
  target,
  model: DEMO.model,
  version: DEMO.versions.v2,
  stages: [
    { count: 1, bakeTimeSec: 1 },
    { count: 2, bakeTimeSec: 1 },
    { percent: 100, bakeTimeSec: 1 },
  ],
  abortRules: [{ failureType: 'any', thresholdPercent: 1, minExecuted: 1 }],
  onAbort: 'revert',
  perDeviceTimeoutSec: 120,
};

/** The broken v3: one canary first; a single failure aborts the rollout and reverts the canary. */
export const v3Rollout: RolloutSpec & { id: string } = {
  id: 'mnist-edge-v3',
  name: 'mnist-edge 3.0.0 (broken build)',
  target,
  model: DEMO.model,
  version: DEMO.versions.v3,
  stages: [
    { count: 1, bakeTimeSec: 1 },
    { percent: 100, bakeTimeSec: 1 },
  ],
  abortRules: [{ failureType: 'any', thresholdPercent: 1, minExecuted: 1 }],
  onAbort: 'revert',
  perDeviceTimeoutSec: 120,
};

export function poolBody(url: string): PoolBody {
  return { region: DEMO.region, endpoints: [url], models: [DEMO.cloudModel], weight: 100 };
}

/**
 * Digits the edge model is less than 80% sure of go to the cloud model (about one in six with
 * these builds). The budget is generous because the demo shares two cores among six processes;
 * a late answer would be served from the edge, marked edge-fallback.
 */
export const escalationPolicy: EscalationPolicy = { maxProbBelow: 0.8, cloudModel: DEMO.cloudModel, budgetMs: 1_000 };
