import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, entryPoints } from '../processes/entry-points.ts';
import { ManagedProcess } from '../processes/managed-process.ts';
import { LAYER, type ProcessGroup } from '../processes/process-group.ts';

export interface ServerEndpoints {
  /** Base URL of the REST API, without `/v1`. */
  http: string;
  mqtt: string;
  adminToken: string;
  enrollmentToken: string;
}

/** A token the server accepts (24–256 characters). */
function secret(): string {
  return randomBytes(24).toString('base64url');
}

/** Reads the REST and MQTT URLs from the banner `server/src/main.ts` prints once it listens. */
export function parseServerBanner(lines: readonly string[]): { http: string; mqtt: string } | undefined {
  let http: string | undefined;
  let mqtt: string | undefined;
  for (const line of lines) {
    http ??= /^\s*REST API\s+(https?:\/\/\S+?)\/v1\b/.exec(line)?.[1];
    mqtt ??= /^\s*MQTT\s+(mqtts?:\/\/\S+)/.exec(line)?.[1];
  }
  return http && mqtt ? { http, mqtt } : undefined;
}

/**
 * Starts the control server on loopback with free ports (port 0: the banner reports the real
 * ones), its own data folder, and tokens made up for this run.
 */
export async function startServer(opts: { group: ProcessGroup; dir: string; logDir: string; timeoutMs: number; signal?: AbortSignal }): Promise<{ process: ManagedProcess; endpoints: ServerEndpoints }> {
  const dataDir = join(opts.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const adminToken = secret();
  const enrollmentToken = secret();
  const proc = opts.group.add(ManagedProcess.start({
    name: 'server',
    entry: entryPoints.server(),
    cwd: opts.dir,
    logFile: join(opts.logDir, 'server.log'),
    env: childEnv({
      FLOTILLA_DATA_DIR: dataDir,
      FLOTILLA_HTTP_HOST: '127.0.0.1',
      FLOTILLA_HTTP_PORT: '0',
      FLOTILLA_MQTT_HOST: '127.0.0.1',
      FLOTILLA_MQTT_PORT: '0',
      FLOTILLA_MQTT_WS_PORT: 'off',
      FLOTILLA_ADMIN_TOKEN: adminToken,
      FLOTILLA_ENROLLMENT_TOKEN: enrollmentToken,
      FLOTILLA_LOG_LEVEL: 'info',
    }),
  }), LAYER.server);
  const seen: string[] = [];
  const urls = await proc.waitForLine(
    (line) => {
      seen.push(line);
      return parseServerBanner(seen);
    },
    { what: 'the server to print its URLs', timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) },
  );
  return { process: proc, endpoints: { ...urls, adminToken, enrollmentToken } };
}
