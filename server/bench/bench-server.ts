/**
 * The broker under measurement, in its own process so its memory is its own. Started by
 * connect.ts with `--expose-gc`; answers `{ cmd: 'mem' }` on IPC with memory after a full GC, and
 * `{ cmd: 'peek' }` with memory as it stands (no GC), for sampling a peak while work runs.
 *
 *   kind=flotilla: the real control server (buildServer: SQLite, enrollment, broker policy, ingest)
 *   kind=aedes:    a bare aedes broker with no auth and default options: the peer
 */
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { buildServer } from '../src/index.ts';

const kind = process.argv[2] ?? 'flotilla';
const gc = (globalThis as { gc?: () => void }).gc;

function memory(collect = true) {
  if (collect) {
    gc?.();
    gc?.();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

async function start(): Promise<{ http: string | null; mqtt: string; adminToken: string | null; enrollmentToken: string | null }> {
  if (kind === 'aedes') {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { http: null, mqtt: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`, adminToken: null, enrollmentToken: null };
  }
  const enrollmentToken = 'flte_bench-enrollment-token-0123456789';
  const s = await buildServer({
    dataDir: mkdtempSync(join(tmpdir(), 'flt-bench-')),
    logLevel: 'warn',
    autoAccept: true,
    enrollmentToken,
    http: { port: 0 },
    mqtt: { tcpPort: 0, wsPort: null },
  });
  const addr = await s.listen();
  return { http: addr.http, mqtt: addr.mqtt, adminToken: s.bootstrap.adminToken, enrollmentToken };
}

const info = await start();
process.send!({ ready: true, ...info, memory: memory() });
process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'mem') process.send!({ memory: memory() });
  if (msg.cmd === 'peek') process.send!({ peek: memory(false) });
  if (msg.cmd === 'exit') process.exit(0);
});
