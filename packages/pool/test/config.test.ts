import { describe, expect, it } from 'vitest';
import { loadPoolConfig, validatePoolConfig } from '../src/index.ts';

describe('pool worker configuration', () => {
  it('fills every default and freezes the result', () => {
    const config = validatePoolConfig({ modelRepository: '/models' });
    expect(config).toMatchObject({ host: '0.0.0.0', port: 8000, startupModels: '*', batching: { dynamicBatching: true, maxBatchSize: 32, maxQueueDelayUs: 1000, instances: 1 } });
    expect(Object.isFrozen(config.batching)).toBe(true);
  });

  it('reads FLOTILLA_POOL_* variables over the config file', () => {
    const config = loadPoolConfig({
      argv: ['--config', 'pool.json'],
      env: { FLOTILLA_POOL_MAX_BATCH_SIZE: '64', FLOTILLA_POOL_DYNAMIC_BATCHING: 'false', FLOTILLA_POOL_PREFERRED_BATCH_SIZES: '8,16', FLOTILLA_POOL_STARTUP_MODELS: 'a,b' },
      readFile: () => JSON.stringify({ modelRepository: '/models', port: 9000, batching: { maxBatchSize: 8 } }),
    });
    expect(config).toMatchObject({ port: 9000, startupModels: ['a', 'b'], batching: { maxBatchSize: 64, dynamicBatching: false, preferredBatchSizes: [8, 16] } });
  });

  it('refuses unknown keys, bad numbers and inconsistent batching with FLT_CONFIG_INVALID naming each problem', () => {
    expect(() => validatePoolConfig({ modelRepository: '/m', batching: { maxBatchSize: 0 }, colour: 'red' })).toThrow(/batching\.maxBatchSize.*|colour/);
    expect(() => loadPoolConfig({ argv: [], env: { FLOTILLA_POOL_MODEL_REPOSITORY: '/m', FLOTILLA_POOL_PORT: 'eighty' } })).toThrow(expect.objectContaining({ code: 'FLT_CONFIG_INVALID' }));
    expect(() => validatePoolConfig({ modelRepository: '/m', batching: { maxBatchSize: 4, preferredBatchSizes: [2, 8] } })).toThrow(/larger than maxBatchSize/);
    expect(() => validatePoolConfig({})).toThrow(/modelRepository/);
  });
});
