/**
 * The control server under measurement, in its own process (started with --expose-gc) so that its
 * memory is its own. `argv[2]` is `embedded` or `external`; in external mode `argv[3..5]` are the
 * broker URL, the server's broker account and its password (a mosquitto with dynamic security).
 * The dynsec timeout is raised to 60 s (the configuration's maximum): with a hundred enrollments in flight and thousands of
 * accounts, mosquitto's answers queue behind its file rewrites for longer than the default.
 *
 * FLT_BENCH_DATA_DIR names a data folder to use and keep (a later server process continues from it,
 * as the seeded 10,000-device external run does); FLT_BENCH_ADMIN_TOKEN fixes the admin token
 * across such restarts. Without them: a fresh folder, removed on exit, and the bootstrap token.
 *
 * IPC: sends `{ ready, http, mqtt, adminToken, enrollmentToken, memory }` once listening; answers
 * `{ cmd: 'mem' }` with memory after a full GC and `{ cmd: 'exit' }` by closing and exiting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '../../src/index.ts';
import type { ServerConfigInput } from '../../src/index.ts';

const mode = process.argv[2] === 'external' ? 'external' : 'embedded';
const gc = (globalThis as { gc?: () => void }).gc;

function memory(): { rss: number; heapUsed: number; external: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

const broker: ServerConfigInput['broker'] =
  mode === 'external'
    ? { mode: 'external', url: process.argv[3]!, username: process.argv[4]!, password: process.argv[5]!, provisioner: 'mosquitto-dynsec', requestTimeoutMs: 60_000 }
    : { mode: 'embedded' };

const keepDataDir = process.env.FLT_BENCH_DATA_DIR;
const dataDir = keepDataDir ?? mkdtempSync(join(tmpdir(), 'flt-bench-broker-'));
const adminToken = process.env.FLT_BENCH_ADMIN_TOKEN;
const enrollmentToken = 'flte_bench-enrollment-token-0123456789';
const server = await buildServer({
  dataDir,
  ...(adminToken ? { adminToken } : {}),
  logLevel: 'warn',
  autoAccept: true,
  enrollmentToken,
  http: { port: 0 },
  mqtt: { tcpPort: 0, wsPort: null },
  broker,
});
const addr = await server.listen();
process.send!({ ready: true, http: addr.http, mqtt: addr.mqtt, adminToken: adminToken ?? server.bootstrap.adminToken, enrollmentToken, memory: memory() });
process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'mem') process.send!({ memory: memory() });
  if (msg.cmd === 'exit') {
    void server.close().finally(() => {
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
  }
});
// The bench process died without asking: do not outlive it.
process.on('disconnect', () => process.exit(0));
