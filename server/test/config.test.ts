import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { configFromEnv, loadConfig, resolveConfig } from '../src/config/load.ts';

describe('server configuration', () => {
  it('fills every default when given nothing and freezes the result', () => {
    const c = resolveConfig({});
    expect(c.http.port).toBe(8080);
    expect(c.mqtt.tcpPort).toBe(1883);
    expect(c.autoAccept).toBe(false);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.http)).toBe(true);
    expect(() => {
      (c.http as { port: number }).port = 1;
    }).toThrow();
  });

  it('refuses unknown keys, wrong types and out-of-range ports with FLT_CONFIG_INVALID naming each problem', () => {
    let err: unknown;
    try {
      resolveConfig({ http: { port: 70000 }, colour: 'blue' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe('FLT_CONFIG_INVALID');
    expect((err as FlotillaError).message).toMatch(/colour|additional/);
    expect((err as FlotillaError).message).toMatch(/port/);
    expect(() => resolveConfig({ logLevel: 'loud' })).toThrow(FlotillaError);
  });

  it('reads FLOTILLA_* variables and lets them override the file', () => {
    const env = { FLOTILLA_HTTP_PORT: '9000', FLOTILLA_MQTT_WS_PORT: 'off', FLOTILLA_AUTO_ACCEPT: 'true', FLOTILLA_DATA_DIR: '/tmp/x' };
    expect(configFromEnv(env)).toEqual({ dataDir: '/tmp/x', autoAccept: true, http: { port: 9000 }, mqtt: { wsPort: null } });
    const c = loadConfig({ env, overrides: {} });
    expect(c.http.port).toBe(9000);
    expect(c.mqtt.wsPort).toBeNull();
  });

  it('reads external broker mode from FLOTILLA_BROKER_* variables, and names what is missing', () => {
    const env = { FLOTILLA_BROKER_MODE: 'external', FLOTILLA_BROKER_URL: 'mqtt://127.0.0.1:1883', FLOTILLA_BROKER_USERNAME: 'flotilla', FLOTILLA_BROKER_PASSWORD: 's3cret' };
    const c = loadConfig({ env, overrides: {} });
    expect(c.broker).toMatchObject({ mode: 'external', url: 'mqtt://127.0.0.1:1883', username: 'flotilla', provisioner: 'mosquitto-dynsec' });
    expect(() => loadConfig({ env: { FLOTILLA_BROKER_MODE: 'external' }, overrides: {} })).toThrow(/FLT_CONFIG_INVALID|invalid server configuration/);
  });

  it('refuses a non-numeric port in the environment', () => {
    expect(() => loadConfig({ env: { FLOTILLA_HTTP_PORT: '80a' } })).toThrow(/FLOTILLA_HTTP_PORT/);
  });

  it('refuses a config file that is not JSON', () => {
    expect(() => loadConfig({ env: {}, file: '/nonexistent/flotilla.json' })).toThrow(/cannot read config file/);
  });
});
