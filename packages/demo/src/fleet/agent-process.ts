import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, entryPoints } from '../processes/entry-points.ts';
import { ManagedProcess } from '../processes/managed-process.ts';
import { LAYER, type ProcessGroup } from '../processes/process-group.ts';
import { urlFromLogLine } from './json-log.ts';

export interface AgentSpec {
  deviceId: string;
  labels: Record<string, string>;
}

/**
 * The agent's configuration file for the demo. The health window is short so a stage takes
 * seconds, yet real: a new version must serve `minRequests` of the demo's traffic without errors
 * for `windowMs` before the device reports it healthy. A quiet device (the first install, before
 * any traffic) passes after `maxWaitMs`.
 */
export function agentConfig(spec: AgentSpec, serverUrl: string, enrollmentToken: string, dataDir: string): Record<string, unknown> {
  return {
    serverUrl,
    deviceId: spec.deviceId,
    enrollmentToken,
    dataDir,
    labels: spec.labels,
    heartbeatSec: 5,
    logLevel: 'info',
    inventory: { providers: ['cpu'] },
    ota: { health: { windowMs: 2_000, minRequests: 5, maxWaitMs: 3_000, pollMs: 200 } },
    localApi: { host: '127.0.0.1', port: 0 },
  };
}

/**
 * Starts one agent daemon with its own folder (`<dir>/agent.json` and `<dir>/data`), and waits
 * for its local KServe v2 API to listen.
 */
export async function startAgent(opts: {
  group: ProcessGroup;
  spec: AgentSpec;
  dir: string;
  logDir: string;
  serverUrl: string;
  enrollmentToken: string;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<{ process: ManagedProcess; localApi: string }> {
  mkdirSync(opts.dir, { recursive: true });
  const configFile = join(opts.dir, 'agent.json');
  writeFileSync(configFile, `${JSON.stringify(agentConfig(opts.spec, opts.serverUrl, opts.enrollmentToken, join(opts.dir, 'data')), null, 2)}\n`, { mode: 0o600 });
  const proc = opts.group.add(ManagedProcess.start({
    name: opts.spec.deviceId,
    entry: entryPoints.agent(),
    cwd: opts.dir,
    logFile: join(opts.logDir, `${opts.spec.deviceId}.log`),
    env: childEnv({ FLOTILLA_AGENT_CONFIG: configFile }),
  }), LAYER.agent);
  const localApi = await proc.waitForLine((line) => urlFromLogLine(line, 'local inference API listening'), {
    what: 'the local inference API to listen',
    timeoutMs: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { process: proc, localApi };
}
