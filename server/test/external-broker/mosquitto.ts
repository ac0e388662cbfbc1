/**
 * A real mosquitto per test: a free loopback port, a generated config with the dynamic-security
 * plugin, and a dynsec file made by `mosquitto_ctrl dynsec init` (its admin is the server's
 * privileged account). Stopped and its folder removed when the calling test finishes.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_MQTT_PAYLOAD_BYTES } from '@flotilla/protocol';
import { onTestFinished } from 'vitest';

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const MOSQUITTO_CTRL = process.env.MOSQUITTO_CTRL_BIN ?? '/usr/bin/mosquitto_ctrl';
const PLUGIN_CANDIDATES = [
  process.env.MOSQUITTO_DYNSEC_PLUGIN,
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
];

export const ADMIN_USER = 'flotilla-admin';
export const ADMIN_PASSWORD = 'admin-password-for-tests-0123456789';

export interface Mosquitto {
  port: number;
  url: string;
  /** everything mosquitto wrote to stderr so far (for failure messages) */
  log(): string;
}

/** Fails with a message that says how to get mosquitto, rather than skipping. */
export function mosquittoPaths(): { bin: string; ctrl: string; plugin: string } {
  const plugin = PLUGIN_CANDIDATES.find((p): p is string => p !== undefined && existsSync(p));
  const missing = [MOSQUITTO, MOSQUITTO_CTRL].filter((p) => !existsSync(p));
  if (missing.length > 0 || plugin === undefined) {
    throw new Error(
      `mosquitto with its dynamic-security plugin is required for the external broker tests (missing: ${[...missing, ...(plugin ? [] : ['mosquitto_dynamic_security.so'])].join(', ')}). ` +
        'Run `sudo bash scripts/ensure-mosquitto.sh` (CI runs it before the tests).',
    );
  }
  return { bin: MOSQUITTO, ctrl: MOSQUITTO_CTRL, plugin };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface MosquittoOptions {
  /** Called with the initialised dynsec file before mosquitto reads it (the broker bench seeds accounts here). */
  seed?: (dynsecFile: string) => void;
}

/** `cleanup` registers the stop (default: when the calling test finishes; pass afterAll's for a shared one). */
export async function startMosquitto(cleanup: (fn: () => Promise<void>) => void = onTestFinished, opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const { bin, ctrl, plugin } = mosquittoPaths();
  const dir = mkdtempSync(join(tmpdir(), 'flt-mosquitto-'));
  // mosquitto started as root drops to its own user, which must still read the files here.
  chmodSync(dir, 0o755);
  const dynsecFile = join(dir, 'dynamic-security.json');
  execFileSync(ctrl, ['dynsec', 'init', dynsecFile, ADMIN_USER, ADMIN_PASSWORD], { stdio: 'pipe' });
  opts.seed?.(dynsecFile);
  chmodSync(dynsecFile, 0o666);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      'allow_anonymous false',
      'persistence false',
      'set_tcp_nodelay true',
      `listener ${port} 127.0.0.1`,
      `plugin ${plugin}`,
      `plugin_opt_config_file ${dynsecFile}`,
      // The same payload limit the embedded broker applies, plus room for the packet headers.
      `max_packet_size ${MAX_MQTT_PAYLOAD_BYTES + 1024}`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o644);
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      if (/ running$/m.test(stderr)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code} before it was ready:\n${stderr}`)));
    child.once('error', reject);
  });
  cleanup(async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  await ready;
  return { port, url: `mqtt://127.0.0.1:${port}`, log: () => stderr };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
