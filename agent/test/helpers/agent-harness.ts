import { onTestFinished } from 'vitest';
import type { Inventory } from '@flotilla/protocol';
import { Agent, type AgentDeps } from '../../src/agent.ts';
import { validateAgentConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/schema.ts';
import { silentLogger } from './logger.ts';

export const fakeInventory: Inventory = {
  arch: 'x64',
  os: { platform: 'linux', release: '6.1.0' },
  cpu: { model: 'test cpu', cores: 2 },
  memoryBytes: 8 * 1024 ** 3,
  disk: { path: '/data', totalBytes: 1e9, freeBytes: 5e8 },
  gpu: null,
  executionProviders: ['cpu'],
  agentVersion: '0.1.0',
};

export const TOKEN = 'fleet-token-0123456789';

/** An embedded agent with fast reconnects, closed when the test finishes. */
/** Raw config keys (validated like a config file), on top of test defaults. */
export type AgentOverrides = { serverUrl: string; dataDir: string } & Partial<Record<keyof AgentConfig, unknown>>;

export async function startAgent(overrides: AgentOverrides, deps: AgentDeps = {}): Promise<Agent> {
  const config = validateAgentConfig({
    deviceId: 'edge-1',
    enrollmentToken: TOKEN,
    mqtt: { backoff: { initialMs: 20, maxMs: 200, multiplier: 2 }, keepaliveSec: 30 },
    ...overrides,
  });
  const agent = await Agent.create(config, { logger: silentLogger, inventory: { collect: async () => fakeInventory }, closeTimeoutMs: 2000, ...deps });
  onTestFinished(() => agent.close());
  await agent.start();
  return agent;
}

export function once<T extends unknown[]>(emitter: { once(event: string, fn: (...args: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}
