import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const serverFile = fileURLToPath(new URL('./kserve-test-server.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface TestServerProcess {
  proc: ChildProcess;
  url: string;
  /** SIGTERM, then wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts the test KServe server as a real child process. The caller registers `stop` for cleanup. */
export async function startTestServer(repository: string): Promise<TestServerProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', serverFile, '--repository', repository, '--port', '0'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    })();
    return stopping;
  };
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    proc.once('exit', (code) => reject(new Error(`test KServe server exited (${code}): ${out}`)));
  });
  return { proc, url: `http://127.0.0.1:${port}`, stop };
}
