import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { loadAgentConfig } from '../src/config/load.ts';
import { deviceIdFromHostname } from '../src/config/hostname.ts';
import { tempDir } from './helpers/temp-dir.ts';

function writeConfig(obj: unknown): string {
  const path = join(tempDir(), 'agent.json');
  writeFileSync(path, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return path;
}

function configError(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe('FLT_AGENT_CONFIG_INVALID');
    return err as FlotillaError;
  }
  throw new Error('expected FLT_AGENT_CONFIG_INVALID');
}

describe('agent config', () => {
  it('fills every default from the schema and freezes the result', () => {
    const path = writeConfig({ serverUrl: 'http://127.0.0.1:8080', deviceId: 'edge-1' });
    const config = loadAgentConfig({ argv: ['--config', path], env: {} });
    expect(config).toMatchObject({
      serverUrl: 'http://127.0.0.1:8080',
      deviceId: 'edge-1',
      dataDir: '/var/lib/flotilla-agent',
      heartbeatSec: 30,
      logLevel: 'info',
      labels: {},
      mqtt: { keepaliveSec: 30, backoff: { initialMs: 1000, maxMs: 60000, multiplier: 2 } },
      outbox: { maxEntries: 10000, inflightWindow: 32 },
      inventory: { providers: ['tensorrt', 'cuda', 'cpu'] },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.mqtt.backoff)).toBe(true);
    expect(() => {
      (config as { heartbeatSec: number }).heartbeatSec = 1;
    }).toThrow(TypeError);
  });

  it('overlays FLOTILLA_* environment variables on the file, merging labels', () => {
    const path = writeConfig({ serverUrl: 'http://a.example:1', labels: { site: 'lab', tier: 'edge' }, heartbeatSec: 60 });
    const config = loadAgentConfig({
      argv: [],
      env: {
        FLOTILLA_AGENT_CONFIG: path,
        FLOTILLA_SERVER_URL: 'https://flotilla.example.com',
        FLOTILLA_DEVICE_ID: 'jetson-07',
        FLOTILLA_ENROLLMENT_TOKEN: 'fleet-token-0123456789',
        FLOTILLA_DATA_DIR: '/tmp/agent-data',
        FLOTILLA_LABELS: 'tier=canary, rack=r2',
        FLOTILLA_HEARTBEAT_SEC: '15',
        FLOTILLA_LOG_LEVEL: 'debug',
        FLOTILLA_OUTBOX_MAX_ENTRIES: '500',
        FLOTILLA_EXECUTION_PROVIDERS: 'cuda,cpu',
      },
    });
    expect(config).toMatchObject({
      serverUrl: 'https://flotilla.example.com',
      deviceId: 'jetson-07',
      enrollmentToken: 'fleet-token-0123456789',
      dataDir: '/tmp/agent-data',
      labels: { site: 'lab', tier: 'canary', rack: 'r2' },
      heartbeatSec: 15,
      logLevel: 'debug',
      outbox: { maxEntries: 500 },
      inventory: { providers: ['cuda', 'cpu'] },
    });
  });

  it('defaults the device id to the sanitized hostname', () => {
    const config = loadAgentConfig({ argv: [], env: { FLOTILLA_SERVER_URL: 'http://s:1' }, hostname: () => '-Jetson Orin#2.local' });
    expect(config.deviceId).toBe('Jetson-Orin-2.local');
    expect(deviceIdFromHostname('***')).toBe('device');
    expect(deviceIdFromHostname('x'.repeat(100))).toHaveLength(64);
  });

  it('refuses a config file that is not JSON, naming the file', () => {
    const path = writeConfig('{ serverUrl: nope');
    const err = configError(() => loadAgentConfig({ argv: [`--config=${path}`], env: {} }));
    expect(err.message).toContain(path);
    expect(err.message).toContain('not valid JSON');
  });

  it('refuses a config file that does not exist', () => {
    const err = configError(() => loadAgentConfig({ argv: ['--config', '/nonexistent/agent.json'], env: {} }));
    expect(err.message).toContain('/nonexistent/agent.json');
  });

  it('refuses unknown keys at any depth and names them', () => {
    const path = writeConfig({ serverUrl: 'http://s:1', deviceId: 'd1', heartbeat: 5, outbox: { maxEntires: 10 } });
    const err = configError(() => loadAgentConfig({ argv: ['--config', path], env: {} }));
    expect(err.message).toContain('heartbeat');
    expect(err.message).toContain('outbox');
    expect(err.message).toContain('maxEntires');
  });

  it('takes the artifact download transport, direct by default, and refuses any other', () => {
    const base = { serverUrl: 'http://s:1', deviceId: 'd1' };
    expect(loadAgentConfig({ argv: ['--config', writeConfig(base)], env: {} }).ota.download.transport).toBe('direct');
    expect(loadAgentConfig({ argv: ['--config', writeConfig({ ...base, ota: { download: { transport: 'undici' } } })], env: {} }).ota.download.transport).toBe('undici');
    const err = configError(() => loadAgentConfig({ argv: ['--config', writeConfig({ ...base, ota: { download: { transport: 'curl' } } })], env: {} }));
    expect(err.message).toContain('transport');
  });

  it('refuses bad values from the environment with the key that is wrong', () => {
    const err = configError(() =>
      loadAgentConfig({ argv: [], env: { FLOTILLA_SERVER_URL: 'http://s:1', FLOTILLA_DEVICE_ID: 'ok', FLOTILLA_HEARTBEAT_SEC: 'often' } }),
    );
    expect(err.message).toContain('heartbeatSec');
    const err2 = configError(() => loadAgentConfig({ argv: [], env: { FLOTILLA_SERVER_URL: 'ftp://s', FLOTILLA_DEVICE_ID: 'bad/id' } }));
    expect(err2.message).toContain('serverUrl');
    expect(err2.message).toContain('deviceId');
    const err3 = configError(() => loadAgentConfig({ argv: [], env: { FLOTILLA_SERVER_URL: 'http://s:1', FLOTILLA_LABELS: 'Bad Key=x' } }));
    expect(err3.message).toContain('labels');
  });

  it('requires a server URL', () => {
    const err = configError(() => loadAgentConfig({ argv: [], env: { FLOTILLA_DEVICE_ID: 'd1' } }));
    expect(err.message).toContain('serverUrl');
  });
});
