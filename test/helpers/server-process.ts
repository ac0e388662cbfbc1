import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const serverMain = fileURLToPath(new URL('../../server/src/main.ts', import.meta.url));

export interface ServerProcessOptions {
  dataDir: string;
  httpPort: number;
  mqttPort: number;
  adminToken: string;
  enrollmentToken: string;
}

export interface ServerProcess {
  proc: ChildProcess;
  http: string;
  /** Everything the server printed, stdout and stderr together. */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** kill -9 and wait for exit: no shutdown hook runs. */
  kill9(): Promise<void>;
}

/**
 * A free TCP port on 127.0.0.1, found by binding port 0 and closing. A server that must come back on
 * the same ports after a restart (agents reconnect to the MQTT port they were given) needs fixed ports.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the real control server (`server/src/main.ts`) as a child process on fixed ports, with its
 * data folder (SQLite, artifacts, keys) in `dataDir`, and resolves once it answers /readyz. Starting
 * it again with the same options is a restart that reuses everything it stored.
 */
export async function spawnServer(opts: ServerProcessOptions, timeoutMs = 30_000): Promise<ServerProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', serverMain], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      FLOTILLA_DATA_DIR: opts.dataDir,
      FLOTILLA_LOG_LEVEL: 'warn',
      FLOTILLA_ADMIN_TOKEN: opts.adminToken,
      FLOTILLA_ENROLLMENT_TOKEN: opts.enrollmentToken,
      FLOTILLA_HTTP_HOST: '127.0.0.1',
      FLOTILLA_HTTP_PORT: String(opts.httpPort),
      FLOTILLA_MQTT_HOST: '127.0.0.1',
      FLOTILLA_MQTT_PORT: String(opts.mqttPort),
      FLOTILLA_MQTT_WS_PORT: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const http = `http://127.0.0.1:${opts.httpPort}`;
  const handle: ServerProcess = {
    proc,
    http,
    output: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited before it was ready:\n${out}`);
    try {
      const res = await fetch(`${http}/readyz`);
      if (res.ok) return handle;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      await handle.kill9();
      throw new Error(`server not ready within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
