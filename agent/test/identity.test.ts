import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { IDENTITY_FILE, IdentityStore } from '../src/identity/identity-store.ts';
import { tempDir } from './helpers/temp-dir.ts';

describe('device identity', () => {
  it('creates identity.json with mode 0600 and a 32-byte base64url enrollment key on first start', () => {
    const dir = tempDir();
    const { store, created } = IdentityStore.open(dir, 'edge-1');
    expect(created).toBe(true);
    const path = join(dir, IDENTITY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const onDisk = JSON.parse(readFileSync(path, 'utf8'));
    expect(onDisk.deviceId).toBe('edge-1');
    expect(onDisk.enrollmentKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(onDisk.enrollmentKey, 'base64url')).toHaveLength(32);
    expect(store.enrolled).toBe(false);
  });

  it('reuses the same key and credential across restarts', () => {
    const dir = tempDir();
    const first = IdentityStore.open(dir, 'edge-1').store;
    first.saveCredential('secret-credential', { tcp: 'mqtt://127.0.0.1:1883' }, 42);
    const again = IdentityStore.open(dir, 'edge-1');
    expect(again.created).toBe(false);
    expect(again.store.current.enrollmentKey).toBe(first.current.enrollmentKey);
    expect(again.store.current.credential).toBe('secret-credential');
    expect(again.store.enrolled).toBe(true);
    expect(statSync(join(dir, IDENTITY_FILE)).mode & 0o777).toBe(0o600);
  });

  it('starts a new identity when the configured device id changes', () => {
    const dir = tempDir();
    const first = IdentityStore.open(dir, 'edge-1').store;
    const second = IdentityStore.open(dir, 'edge-2');
    expect(second.created).toBe(true);
    expect(second.replacedDeviceId).toBe('edge-1');
    expect(second.store.current.enrollmentKey).not.toBe(first.current.enrollmentKey);
  });

  it('refuses a corrupt identity file instead of silently making a new key', () => {
    const dir = tempDir();
    writeFileSync(join(dir, IDENTITY_FILE), '{"version":1,');
    expect(() => IdentityStore.open(dir, 'edge-1')).toThrow(FlotillaError);
    try {
      IdentityStore.open(dir, 'edge-1');
    } catch (err) {
      expect((err as FlotillaError).code).toBe('FLT_AGENT_IDENTITY_INVALID');
    }
  });
});
