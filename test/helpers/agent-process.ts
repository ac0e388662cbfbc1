import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const agentMain = fileURLToPath(new URL('../../agent/src/main.ts', import.meta.url));

export interface AgentProcess {
  proc: ChildProcess;
  /** Everything the agent printed, stdout and stderr together. */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** kill -9 and wait for exit. */
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts the real agent daemon (`agent/src/main.ts`) as a child process with FLOTILLA_* variables. */
export function spawnAgent(env: Record<string, string>): AgentProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', agentMain], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', FLOTILLA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export interface TestAgentOptions {
  serverUrl: string;
  deviceId: string;
  enrollmentToken: string;
  dataDir: string;
  /** More FLOTILLA_* variables, or overrides of the defaults below. */
  env?: Record<string, string>;
}

/**
 * The real agent as a test device: its local API on a free port (logged), the CPU provider only,
 * and no health window to wait out after a switch.
 */
export function spawnTestAgent(o: TestAgentOptions): AgentProcess {
  return spawnAgent({
    FLOTILLA_SERVER_URL: o.serverUrl,
    FLOTILLA_DEVICE_ID: o.deviceId,
    FLOTILLA_ENROLLMENT_TOKEN: o.enrollmentToken,
    FLOTILLA_DATA_DIR: o.dataDir,
    FLOTILLA_LOCAL_API_PORT: '0',
    FLOTILLA_OTA_HEALTH_WINDOW_MS: '0',
    FLOTILLA_OTA_HEALTH_MIN_REQUESTS: '0',
    FLOTILLA_EXECUTION_PROVIDERS: 'cpu',
    ...o.env,
  });
}

export async function eventually<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: T;
  for (;;) {
    last = await fn();
    if (ok(last)) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}; last value: ${JSON.stringify(last)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
