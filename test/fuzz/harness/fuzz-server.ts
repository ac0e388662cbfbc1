import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildServer, type FlotillaServer } from '@flotilla/server';
import { ADMIN_TOKEN, ENROLL_TOKEN } from '../../../server/test/helpers/server.ts';
import type { FuzzProbe } from './fuzz-report.ts';

export interface FuzzServer {
  server: FlotillaServer;
  http: string;
  mqtt: string;
  close(): Promise<void>;
}

/**
 * A real control server on ephemeral ports with its SQLite file in a temp folder. Its logger keeps
 * only error lines, and each one is recorded on the probe as a crash: server code logs at error
 * exactly where a safety net caught something that escaped (a broker handler that threw, an
 * unhandled route error, an event batch that did not commit).
 */
export async function startFuzzServer(probe: FuzzProbe): Promise<FuzzServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flt-fuzz-'));
  const logger = pino({ level: 'error' }, { write: (line: string) => probe.crash(`server logged: ${line}`) });
  let server: FlotillaServer;
  try {
    server = await buildServer(
      {
        dataDir,
        adminToken: ADMIN_TOKEN,
        enrollmentToken: ENROLL_TOKEN,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { host: '127.0.0.1', tcpPort: 0, wsPort: null },
        shutdownTimeoutMs: 3000,
      },
      { logger },
    );
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const addr = await server.listen();
  let closing: Promise<void> | null = null;
  return {
    server,
    http: addr.http,
    mqtt: addr.mqtt,
    close: () =>
      (closing ??= server.close().finally(() => rmSync(dataDir, { recursive: true, force: true }))),
  };
}
