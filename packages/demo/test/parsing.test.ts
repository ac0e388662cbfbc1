import { describe, expect, it } from 'vitest';
import { describeRolloutEvent } from '../src/control/rollout-events.ts';
import { urlFromLogLine } from '../src/fleet/json-log.ts';
import { parseServerBanner } from '../src/fleet/server-process.ts';
import { parseArgs, UsageError } from '../src/options.ts';

describe('reading what the child processes print', () => {
  it('finds the REST and MQTT URLs in the server banner', () => {
    const banner = [
      'Flotilla control server is up',
      '  REST API        http://127.0.0.1:41543/v1   (OpenAPI: http://127.0.0.1:41543/docs)',
      '  health/metrics  http://127.0.0.1:41543/healthz  http://127.0.0.1:41543/readyz  http://127.0.0.1:41543/metrics',
      '  MQTT            mqtt://127.0.0.1:33711',
    ];
    expect(parseServerBanner(banner.slice(0, 2))).toBeUndefined();
    expect(parseServerBanner(banner)).toEqual({ http: 'http://127.0.0.1:41543', mqtt: 'mqtt://127.0.0.1:33711' });
  });

  it('takes a URL only from the log line with the expected message', () => {
    const line = JSON.stringify({ level: 30, url: 'http://127.0.0.1:45501', msg: 'local inference API listening' });
    expect(urlFromLogLine(line, 'local inference API listening')).toBe('http://127.0.0.1:45501');
    expect(urlFromLogLine(line, 'pool worker listening')).toBeUndefined();
    expect(urlFromLogLine('{not json', 'local inference API listening')).toBeUndefined();
    expect(urlFromLogLine('plain text', 'local inference API listening')).toBeUndefined();
  });
});

describe('rollout progress lines', () => {
  const ctx = { version: '3.0.0', stages: 2 };
  const event = (kind: string, deviceId: string | null, details: unknown = null, stage: number | null = 0) => ({ id: 1, ts: 0, stage, kind, deviceId, details });

  it('count stages from one and name the device and the error code', () => {
    expect(describeRolloutEvent(event('stage.started', null), ctx)).toBe('stage 1/2 started');
    expect(describeRolloutEvent(event('device.notified', 'edge-2', { generation: 4 }), ctx)).toBe('edge-2 notified of 3.0.0 (desired generation 4)');
    expect(describeRolloutEvent(event('device.failed', 'edge-2', { error: 'FLT_OTA_SELFTEST_FAILED' }), ctx)).toBe('edge-2 FAILED: FLT_OTA_SELFTEST_FAILED');
    expect(describeRolloutEvent(event('device.reverted', 'edge-2', { to: '2.0.0' }), ctx)).toBe('edge-2 told to go back to 2.0.0');
    expect(describeRolloutEvent(event('aborted', null, { cause: 'any', why: 'any 1 of 1 executed', action: 'revert' }), ctx)).toBe('ABORTED (any): any 1 of 1 executed → revert');
  });

  it('still say something for an event kind it does not know', () => {
    expect(describeRolloutEvent(event('device.someday', 'edge-1'), ctx)).toBe('device.someday edge-1');
  });
});

describe('demo command line', () => {
  it('keeps the work folder only with --keep and takes a models folder', () => {
    expect(parseArgs([])).toMatchObject({ keep: false, help: false });
    expect(parseArgs(['--keep', '--models', '/tmp/m'])).toMatchObject({ keep: true, modelsDir: '/tmp/m' });
    expect(parseArgs(['--models=/tmp/n'])).toMatchObject({ modelsDir: '/tmp/n' });
  });

  it('refuses unknown options and a --models without a folder', () => {
    expect(() => parseArgs(['--fast'])).toThrow(UsageError);
    expect(() => parseArgs(['--models'])).toThrow(UsageError);
  });
});
