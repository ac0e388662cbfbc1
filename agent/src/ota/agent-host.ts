import type { Agent } from '../agent.ts';
import type { FrozenAgentConfig } from '../config/schema.ts';
import type { OtaHost } from './model-manager.ts';
import type { OtaConfig } from './ota-config.ts';

/** The running agent as the model manager sees it. */
export function agentOtaHost(agent: Agent): OtaHost {
  return {
    enqueueEvent: (kind, data) => agent.enqueueEvent(kind, data, { priority: kind === 'ota.downloading' ? 'low' : 'high' }),
    reportModels: (models, generation) => agent.reportModels(models, generation),
    inventory: () => agent.inventory,
    server: () => agent.serverAccess(),
  };
}

/** The `ota` section of the agent config as the manager's options. */
export function otaConfigFrom(config: FrozenAgentConfig['ota']): OtaConfig {
  return {
    health: { ...config.health, maxP99Ms: config.health.maxP99Ms ?? null },
    download: { ...config.download },
    reserveBytes: config.reserveBytes,
    retryMs: config.retryMs,
    healthReportMs: config.healthReportMs,
  };
}
