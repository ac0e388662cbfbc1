import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, entryPoints } from '../processes/entry-points.ts';
import { ManagedProcess } from '../processes/managed-process.ts';
import { LAYER, type ProcessGroup } from '../processes/process-group.ts';
import { urlFromLogLine } from './json-log.ts';

/**
 * Starts a pool worker serving one model from a Triton-layout repository
 * (`<dir>/models/<name>/1/model.onnx`), on loopback with a free port.
 */
export async function startPool(opts: {
  group: ProcessGroup;
  dir: string;
  logDir: string;
  modelName: string;
  modelFile: string;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<{ process: ManagedProcess; url: string }> {
  const repository = join(opts.dir, 'models');
  mkdirSync(join(repository, opts.modelName, '1'), { recursive: true });
  copyFileSync(opts.modelFile, join(repository, opts.modelName, '1', 'model.onnx'));
  const proc = opts.group.add(ManagedProcess.start({
    name: 'pool',
    entry: entryPoints.pool(),
    cwd: opts.dir,
    logFile: join(opts.logDir, 'pool.log'),
    env: childEnv({
      FLOTILLA_POOL_MODEL_REPOSITORY: repository,
      FLOTILLA_POOL_HOST: '127.0.0.1',
      FLOTILLA_POOL_PORT: '0',
    }),
  }), LAYER.pool);
  const url = await proc.waitForLine((line) => urlFromLogLine(line, 'pool worker listening'), {
    what: 'the pool worker to listen',
    timeoutMs: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { process: proc, url };
}
