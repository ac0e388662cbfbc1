import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModels, modelPath } from '@flotilla/modelkit';
import { eventually } from './agent-process.ts';
import { BUILD_DIR } from './ota-registry.ts';

const poolMain = fileURLToPath(new URL('../../packages/pool/src/main.ts', import.meta.url));

export interface PoolProcess {
  proc: ChildProcess;
  /** Base URL the worker logged once it listened. */
  url: string;
  output(): string;
  kill9(): Promise<void>;
}

/** A model repository (Triton layout) holding the MNIST cloud model as `mnist-cloud` version 1; the caller removes it. */
export async function cloudModelRepository(): Promise<string> {
  const [cloud] = await buildModels(BUILD_DIR, { only: ['mnist-cloud-fp32'] });
  const repoDir = mkdtempSync(join(tmpdir(), 'flt-pool-repo-'));
  mkdirSync(join(repoDir, 'mnist-cloud', '1'), { recursive: true });
  copyFileSync(modelPath(BUILD_DIR, cloud!.name), join(repoDir, 'mnist-cloud', '1', 'model.onnx'));
  return repoDir;
}

/** The real pool worker (`packages/pool/src/main.ts`) as a child process; port 0 picks a free one, a fixed port lets a restart come back at the same address. */
export async function spawnPool(repoDir: string, port = 0): Promise<PoolProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', poolMain], {
    env: { PATH: process.env.PATH ?? '', FLOTILLA_POOL_MODEL_REPOSITORY: repoDir, FLOTILLA_POOL_HOST: '127.0.0.1', FLOTILLA_POOL_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  const url = await eventually(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*pool worker listening/.exec(out)?.[1], (u) => u !== undefined, { what: 'pool worker url', timeoutMs: 60_000 });
  return {
    proc,
    url: url!,
    output: () => out,
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
