import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../src/config/load.ts';

const base = { FLOTILLA_SERVER_URL: 'http://127.0.0.1:1', FLOTILLA_DEVICE_ID: 'edge-1' };
const load = (env: Record<string, string>, file?: object) =>
  loadAgentConfig({ env: { ...base, ...env, ...(file ? { FLOTILLA_AGENT_CONFIG: '/cfg.json' } : {}) }, argv: [], readFile: () => JSON.stringify(file ?? {}) });

describe('agent drift configuration', () => {
  it('summarizes every request in 60 s windows over [0, 1] by default', () => {
    expect(load({}).drift).toEqual({ enabled: true, intervalMs: 60_000, inputRange: [0, 1], sampleEvery: 1 });
  });

  it('takes the window and the switch from the environment', () => {
    expect(load({ FLOTILLA_DRIFT_INTERVAL_MS: '500', FLOTILLA_DRIFT_ENABLED: 'false' }).drift).toMatchObject({ enabled: false, intervalMs: 500 });
  });

  it('refuses an input range whose low end is not below its high end, naming the key', () => {
    expect(() => load({}, { drift: { inputRange: [1, 1] } })).toThrow(/drift\.inputRange/);
    expect(() => load({ FLOTILLA_DRIFT_ENABLED: 'maybe' })).toThrow(/drift\.enabled/);
  });
});
