/**
 * The control server under soak, in its own process (started with --expose-gc) so that its memory
 * is its own. Guards are on for every address (none exempt), as for devices across the internet;
 * the slow-consumer limit is the smallest allowed so a paused subscriber trips it within seconds.
 *
 * IPC: sends `{ ready, http, mqtt, adminToken, enrollmentToken }` once listening; answers
 * `{ cmd: 'mem' }` with memory after a full GC (and how long the GC took) and `{ cmd: 'exit' }` by closing and exiting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '../../server/src/index.ts';

const gc = (globalThis as { gc?: () => void }).gc;

/** Memory after two full GCs, and how long those held this process (the harness's own pause). */
function memory(): { rss: number; heapUsed: number; external: number; gcMs: number } {
  const t0 = performance.now();
  gc?.();
  gc?.();
  const gcMs = performance.now() - t0;
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, gcMs };
}

const dataDir = mkdtempSync(join(tmpdir(), 'flt-soak-'));
const enrollmentToken = 'flte_soak-enrollment-token-0123456789';
const adminToken = 'flta_soak-admin-token-0123456789abcdef';
const server = await buildServer({
  dataDir,
  logLevel: 'error',
  autoAccept: true,
  adminToken,
  enrollmentToken,
  http: { host: '127.0.0.1', port: 0 },
  mqtt: { host: '127.0.0.1', tcpPort: 0, wsPort: null },
  guards: { exemptAddresses: [], mqttOutgoingBufferBytes: 64 * 1024 },
});
const addr = await server.listen();
process.send!({ ready: true, http: addr.http, mqtt: addr.mqtt, adminToken, enrollmentToken });
process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'mem') process.send!({ memory: memory() });
  if (msg.cmd === 'exit') {
    void server.close().finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
  }
});
// The runner died without asking: do not outlive it.
process.on('disconnect', () => process.exit(0));
