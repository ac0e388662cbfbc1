/**
 * pnpm bench:download — device artifact download through the real server.
 *
 * The server runs in its own process (this file with `--serve`), so neither client shares its event
 * loop. One 100 MB artifact of random bytes is uploaded, published and granted to an enrolled
 * device; then, on the same device endpoint (`GET /v1/artifacts/:sha256`, HTTP Basic device
 * credential), alternating repetitions of:
 *   - agent:  the agent's own downloader (agent/src/ota/downloader.ts), verifying as it writes;
 *   - curl:   `curl -s -o file -H 'authorization: …' URL` (the peer);
 *   - curl+sync: curl, then `sync -d file` (the bytes made durable, as the agent makes them);
 *   - curl+verify: curl, then `sha256sum file` checked against the digest, then `sync -d file`:
 *     the whole job the agent does (fetched, verified against the signed digest, durable), done
 *     the way a shell updater would, one step after the other;
 *   - agent-tmpfs, curl-tmpfs: both into tmpfs, the disk taken out.
 * Both write into the same directory, and each output is unlinked right after its repetition.
 * During every repetition this process's event-loop delay is sampled (1 ms resolution): for the
 * agent it is the lag its download causes, for curl (this loop idle meanwhile) the machine's floor.
 * Then cut-and-resume runs, also through the agent's downloader: the download is aborted after
 * ~40% of the file, then a second call resumes from the partial file with `Range` and `If-Range`;
 * the server counts the bytes it really wrote to its sockets, so bytes lost in flight at the cut
 * count as re-sent.
 *
 * Env: BENCH_MB (default 100), BENCH_REPS (default 7), BENCH_CLIENTS (a comma-separated subset of
 * the clients above, default all), BENCH_SYNC_MIB (the agent's background fdatasync step, default
 * the downloader's own).
 */
import { fork, spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { downloadArtifact } from '../../agent/src/ota/downloader.ts';
import { systemTimers } from '../../agent/src/runtime/timers.ts';
import type { Socket } from 'node:net';
import { buildServer } from '../src/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ADMIN = 'flta_bench-admin-token-0123456789abcdef';
const ENROLL = 'flte_bench-enrollment-token-0123456789';

// ---------------------------------------------------------------- server process

async function serve(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flt-bench-dl-'));
  const s = await buildServer({
    dataDir,
    logLevel: 'warn',
    autoAccept: true,
    adminToken: ADMIN,
    enrollmentToken: ENROLL,
    http: { port: 0 },
    mqtt: { tcpPort: 0, wsPort: null },
    registry: { maxArtifactBytes: 4 * 1024 ** 3 },
  });
  const addr = await s.listen();
  // Bytes the server really put on the wire, per connection, including what was lost at a cut.
  let written = 0;
  const open = new Set<Socket>();
  s.http.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => {
      written += socket.bytesWritten;
      open.delete(socket);
    });
  });
  process.send!({ ready: true, http: addr.http });
  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'bytes') {
      let live = 0;
      for (const socket of open) live += socket.bytesWritten;
      process.send!({ bytes: written + live });
    }
    if (msg.cmd === 'exit') {
      void s.close().then(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(0);
      });
    }
  });
}

// ---------------------------------------------------------------- measuring process

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function fileSha(path: string): Promise<string> {
  const h = createHash('sha256');
  return pipeline(createReadStream(path), h).then(() => h.digest('hex'));
}

async function json(url: string, method: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(url, {
    method: method as 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

type Client = 'agent' | 'curl' | 'curl+sync' | 'curl+verify' | 'agent-tmpfs' | 'curl-tmpfs';
const ALL_CLIENTS: Client[] = ['agent', 'curl', 'curl+sync', 'curl+verify', 'agent-tmpfs', 'curl-tmpfs'];

function chosenClients(): Client[] {
  const named = process.env.BENCH_CLIENTS?.split(',').map((c) => c.trim()) ?? ALL_CLIENTS;
  const unknown = named.filter((c) => !ALL_CLIENTS.includes(c as Client));
  if (unknown.length > 0 || named.length === 0) throw new Error(`BENCH_CLIENTS: unknown ${unknown.join(', ')}; choose from ${ALL_CLIENTS.join(', ')}`);
  return named as Client[];
}

interface Rep {
  rep: number;
  client: Client;
  ms: number;
  mbPerSec: number;
  /** This process's event-loop delay during the repetition, ms. */
  loopLagMaxMs: number;
  loopLagP99Ms: number;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg().map((x) => +x.toFixed(2));
  const MB = Number(process.env.BENCH_MB ?? 100);
  const REPS = Number(process.env.BENCH_REPS ?? 7);
  const CLIENTS = chosenClients();
  const syncEveryBytes = process.env.BENCH_SYNC_MIB ? Number(process.env.BENCH_SYNC_MIB) * 1024 * 1024 : undefined;
  const size = MB * 1024 * 1024;
  const work = mkdtempSync(join(tmpdir(), 'flt-bench-dl-client-'));
  const tmpfs = mkdtempSync(join(process.env.BENCH_TMPFS ?? '/dev/shm', 'flt-bench-dl-'));
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(key: string, cmd?: string) =>
    new Promise<T>((resolve) => {
      const on = (m: Record<string, unknown>) => {
        if (key in m) {
          child.off('message', on);
          resolve(m[key] as T);
        }
      };
      child.on('message', on);
      if (cmd) child.send({ cmd });
    });
  const serverBytes = () => next<number>('bytes', 'bytes');
  try {
    const http = await next<string>('http');

    // Setup: one model, one version, one 100 MB variant, published and granted to one device.
    const blob = join(work, 'artifact.bin');
    writeFileSync(blob, randomBytes(size));
    const sha256 = await fileSha(blob);
    await json(`${http}/v1/models`, 'POST', { name: 'bench' });
    await json(`${http}/v1/models/bench/versions`, 'POST', { version: '1.0.0', metadata: { inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }] } });
    await json(`${http}/v1/models/bench/versions/1.0.0/variants`, 'POST', { id: 'big', format: 'onnx', precision: 'fp32', constraints: {} });
    const uploadStart = performance.now();
    const up = await request(`${http}/v1/models/bench/versions/1.0.0/variants/big/artifact`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: createReadStream(blob),
    });
    const uploaded = (await up.body.json()) as { sha256: string };
    const uploadMs = performance.now() - uploadStart;
    if (uploaded.sha256 !== sha256) throw new Error(`upload measured ${uploaded.sha256}, expected ${sha256}`);
    await json(`${http}/v1/models/bench/versions/1.0.0/publish`, 'POST', {});
    const enrolled = await json(`${http}/v1/enroll`, 'POST', { enrollmentToken: ENROLL, deviceId: 'bench-device', enrollmentKey: 'k'.repeat(40) });
    const credential = enrolled.credential as string;
    await json(`${http}/v1/models/bench/versions/1.0.0/entitlements`, 'POST', { deviceId: 'bench-device' });
    const authHeader = `Basic ${Buffer.from(`bench-device:${credential}`).toString('base64')}`;
    const url = `${http}/v1/artifacts/${sha256}`;

    // The device path: the agent's own downloader (batched writes, streaming sha256 verification
    // against the signed digest, byte cap, resumable partial file), not a bare HTTP client.
    const viaAgent = (out: string, extra: { signal?: AbortSignal; onProgress?: (bytes: number, total: number) => void } = {}) =>
      downloadArtifact({
        url,
        headers: { authorization: authHeader },
        expected: { sha256, length: size },
        partialPath: `${out}.part`,
        finalPath: out,
        timers: systemTimers,
        syncEveryBytes,
        ...extra,
      });
    const run = (cmd: string, args: string[]) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: 'ignore' });
        p.on('error', reject);
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
      });
    const viaCurl = (out: string) => run('curl', ['-s', '-o', out, '-H', `authorization: ${authHeader}`, url]);
    const sha256sum = (file: string) =>
      new Promise<string>((resolve, reject) => {
        const p = spawn('sha256sum', [file], { stdio: ['ignore', 'pipe', 'ignore'] });
        let text = '';
        p.stdout.on('data', (d: Buffer) => (text += d.toString()));
        p.on('error', reject);
        p.on('exit', (code) => (code === 0 ? resolve(text.split(' ')[0] ?? '') : reject(new Error(`sha256sum exited ${code}`))));
      });
    const via = async (client: Client, out: string): Promise<void> => {
      if (client === 'agent' || client === 'agent-tmpfs') await viaAgent(out);
      else await viaCurl(out);
      if (client === 'curl+verify' && (await sha256sum(out)) !== sha256) throw new Error('curl+verify: the digest differs');
      if (client === 'curl+sync' || client === 'curl+verify') await run('sync', ['-d', out]);
    };

    // Warm-up of both paths (page cache, connection pool, JIT), not recorded.
    await viaAgent(join(work, 'warm-u'));
    await viaCurl(join(work, 'warm-c'));
    rmSync(join(work, 'warm-u'));
    rmSync(join(work, 'warm-c'));
    const reps: Rep[] = [];
    for (let r = 0; r < REPS; r++) {
      // Rotate who goes first so no client always runs on a warmer machine.
      const order = CLIENTS.map((_, i) => CLIENTS[(i + r) % CLIENTS.length]!);
      for (const client of order) {
        const out = join(client.endsWith('-tmpfs') ? tmpfs : work, `${client}-${r}`);
        const lag = monitorEventLoopDelay({ resolution: 1 });
        lag.enable();
        const t0 = performance.now();
        await via(client, out);
        const ms = performance.now() - t0;
        lag.disable();
        if (statSync(out).size !== size) throw new Error(`${client} wrote ${statSync(out).size} bytes`);
        if (r === 0 && (await fileSha(out)) !== sha256) throw new Error(`${client} bytes differ`);
        rmSync(out);
        const rep: Rep = {
          rep: r,
          client,
          ms: +ms.toFixed(1),
          mbPerSec: +(MB / (ms / 1000)).toFixed(1),
          loopLagMaxMs: +(lag.max / 1e6).toFixed(1),
          loopLagP99Ms: +(lag.percentile(99) / 1e6).toFixed(1),
        };
        reps.push(rep);
        console.log(JSON.stringify(rep));
      }
    }

    // Cut and resume through the agent's downloader: abort after ~40% (as a dropped link or a
    // restart would), then a second call resumes from the partial file it left.
    const resumes: Array<{ rep: number; cutAtBytes: number; resumedFrom: number; serverBytes: number; extraBytes: number; extraPct: number; ms: number }> = [];
    // Each costs well under a second and the figure swings with the socket buffers at the cut: at least five.
    for (let r = 0; r < Math.max(5, REPS); r++) {
      const out = join(work, `resume-${r}`);
      const before = await serverBytes();
      const t0 = performance.now();
      const cut = new AbortController();
      await viaAgent(out, { signal: cut.signal, onProgress: (bytes) => bytes >= size * 0.4 && cut.abort() }).then(
        () => {
          throw new Error('the cut download finished');
        },
        (err: unknown) => {
          if (!cut.signal.aborted) throw err;
        },
      );
      const cutAt = statSync(`${out}.part`).size;
      const resumed = await viaAgent(out);
      const ms = performance.now() - t0;
      if (resumed.resumedFrom !== cutAt) throw new Error(`resumed from ${resumed.resumedFrom}, the partial file held ${cutAt}`);
      if ((await fileSha(out)) !== sha256) throw new Error('resumed file differs');
      rmSync(out);
      // Let the cut connection's close reach the server so its byte count is final.
      await new Promise((r2) => setTimeout(r2, 200));
      const sent = (await serverBytes()) - before;
      const extra = sent - size;
      const entry = { rep: r, cutAtBytes: cutAt, resumedFrom: resumed.resumedFrom, serverBytes: sent, extraBytes: extra, extraPct: +((extra / size) * 100).toFixed(3), ms: +ms.toFixed(1) };
      resumes.push(entry);
      console.log(JSON.stringify({ resume: entry }));
    }

    const of = (c: Client) => reps.filter((x) => x.client === c);
    const mbps = (c: Client) => median(of(c).map((x) => x.mbPerSec));
    const agentMBs = mbps('agent');
    const curlMBs = mbps('curl');
    const resumeExtraPct = median(resumes.map((x) => x.extraPct));
    const lagOf = (c: Client) => ({ maxMs: Math.max(...of(c).map((x) => x.loopLagMaxMs)), medianMaxMs: median(of(c).map((x) => x.loopLagMaxMs)), medianP99Ms: median(of(c).map((x) => x.loopLagP99Ms)) });
    const pkg = (name: string) => (JSON.parse(readFileSync(join(here, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    const out = {
      bench: 'download',
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), platform: process.platform, arch: process.arch },
      versions: { node: process.version, undici: pkg('undici'), fastify: pkg('fastify'), curl: execFileSync('curl', ['--version']).toString().split('\n')[0] },
      load: { atStart: loadAtStart, atEnd: loadavg().map((x) => +x.toFixed(2)) },
      params: { artifactBytes: size, reps: REPS, endpoint: 'GET /v1/artifacts/:sha256 (device Basic auth, entitlement check)', resumeCutFraction: 0.4, loopback: true },
      upload: { ms: +uploadMs.toFixed(1), mbPerSec: +(MB / (uploadMs / 1000)).toFixed(1) },
      reps,
      resumes,
      clients: CLIENTS,
      syncEveryBytes: syncEveryBytes ?? 'default',
      medians: { agentMBps: agentMBs, curlMBps: curlMBs, curlSyncMBps: mbps('curl+sync'), curlVerifyMBps: mbps('curl+verify'), agentTmpfsMBps: mbps('agent-tmpfs'), curlTmpfsMBps: mbps('curl-tmpfs'), resumeExtraPct },
      // curl runs in its own process: its figures are this loop idle, the machine's floor.
      eventLoopLag: { agent: lagOf('agent'), agentTmpfs: lagOf('agent-tmpfs'), curlIdleLoop: lagOf('curl') },
      ratios: {
        /** the agent's durable download against curl leaving its bytes in the page cache */
        agentVsCurl: +(agentMBs / curlMBs).toFixed(3),
        /** bytes durable on disk on both sides */
        agentVsCurlSync: +(agentMBs / mbps('curl+sync')).toFixed(3),
        /** the same whole job on both sides: fetched, verified against the digest, durable */
        agentVsCurlVerify: +(agentMBs / mbps('curl+verify')).toFixed(3),
        /** the download path alone: both into tmpfs */
        agentVsCurlTmpfs: +(mbps('agent-tmpfs') / mbps('curl-tmpfs')).toFixed(3),
        targetAgentVsCurl: 0.9,
        resumeExtraPct,
        targetResumeExtraPct: 5,
      },
    };
    const file = join(here, '..', '..', 'bench-results', 'download.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(out, null, 2));
    console.log(JSON.stringify({ load: out.load, medians: out.medians, ratios: out.ratios, eventLoopLag: out.eventLoopLag, upload: out.upload }, null, 2));
    console.log(`written to ${file}`);
  } finally {
    child.send({ cmd: 'exit' });
    await new Promise((r) => child.once('exit', r));
    rmSync(work, { recursive: true, force: true });
    rmSync(tmpfs, { recursive: true, force: true });
  }
}

if (process.argv.includes('--serve')) await serve();
else await main();
