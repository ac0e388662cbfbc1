/**
 * bench:agent:http. Throughput of the agent's local KServe v2 API (InferenceService, onnxruntime in
 * a worker thread, @flotilla/kserve codec) against a bare fastify route that runs the same
 * `session.run` directly, both fed the same KServe v2 JSON body by a closed-loop client in a separate
 * process. Reps alternate between the two so machine noise hits both alike.
 * Target: local API ≥ 0.8× the bare route (median requests/s).
 * The load comes from wrk by default (C, one epoll thread, a few µs of CPU per request); `--client
 * undici` drives the same jobs from a Node client, which on this 2-core machine takes 20–30 µs of the
 * CPU per request the servers need, and penalizes the two-thread agent more than the one-thread route.
 * Two models: mnist-edge-int8 (one 784-value digit, a realistic request) and tiny-mlp-fp32 (16 values,
 * a run of microseconds: the worst case, where per-request overhead is everything).
 * Usage: pnpm bench:agent:http [--reps 5] [--seconds 3] [--concurrency 8] [--models mnist-edge-int8,tiny-mlp-fp32]
 *   [--client wrk|undici]
 *   [--onnx '{"laneSlots":1}'] (onnxruntime backend options other than the defaults, to compare channels)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModels, goldenFeeds, modelPath, openSession } from '@flotilla/modelkit';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';
import { InferenceService } from '../src/inference/index.ts';
import type { OnnxRuntimeBackendOptions } from '../src/inference/onnx/onnxruntime-backend.ts';
import { startLocalApi } from '../src/local-api/index.ts';
import type { LoadJob, LoadResult as ClientResult } from '../../bench/http-load-client.ts';
import { findWrk, wrkLoad } from '../../bench/wrk-load.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
    models: { type: 'string', default: 'mnist-edge-int8,tiny-mlp-fp32' },
    onnx: { type: 'string', default: '{}' },
    client: { type: 'string', default: 'wrk' },
  },
});
const client = values.client as string;
if (client !== 'wrk' && client !== 'undici') throw new Error(`--client must be wrk or undici, not ${client}`);
const reps = Number(values.reps);
const durationMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const models = (values.models as string).split(',');
const onnx = JSON.parse(values.onnx as string) as OnnxRuntimeBackendOptions;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const dir = join(tmpdir(), 'flotilla-agent-bench-models');
let wrk: string | undefined;
if (client === 'wrk') {
  wrk = findWrk();
  if (wrk === undefined) {
    execFileSync('bash', [fileURLToPath(new URL('../../scripts/ensure-wrk.sh', import.meta.url))], { stdio: 'inherit' });
    wrk = findWrk();
  }
  if (wrk === undefined) throw new Error('wrk is not on PATH');
}
// `wrk -v` prints its version and usage, then exits 1.
const wrkVersion = wrk === undefined ? undefined : spawnSync(wrk, ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim();

// The Node client runs in its own process, so the load does not share an event loop with the servers.
const load =
  client === 'undici'
    ? spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../bench/http-load-client.ts', import.meta.url))], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    : undefined;
if (load) await new Promise<void>((ok) => load.once('message', () => ok()));
const runLoad = (job: LoadJob): Promise<ClientResult> =>
  load
    ? new Promise((ok) => {
        load.once('message', (m) => ok(m as ClientResult));
        load.send(job);
      })
    : wrkLoad(job, wrk);

type LoadResult = ClientResult & { cpuUsPerRequest?: number; mainThreadUsPerRequest?: number };

/** CPU time (µs) of the event-loop thread alone, from /proc (Linux; undefined elsewhere). */
function mainThreadCpuUs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of the whole line, in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/**
 * Besides requests/s, the CPU time this process (every thread: event loop, session workers) spent
 * per answered request while one target was driven, and the event-loop thread's share of it: on a
 * shared machine throughput swings with the neighbours' load, the CPU cost of a request much less,
 * and the event-loop thread is the one both targets saturate first.
 */
async function drive(url: string, reqPath: string, body: string, ms: number): Promise<LoadResult> {
  const cpu = process.cpuUsage();
  const main = mainThreadCpuUs();
  const r = await runLoad({ url, path: reqPath, body: Buffer.from(body).toString('base64'), concurrency, durationMs: ms });
  const used = process.cpuUsage(cpu);
  const mainAfter = mainThreadCpuUs();
  const per = (us: number) => Math.round((us / Math.max(1, r.requests)) * 10) / 10;
  return { ...r, cpuUsPerRequest: per(used.user + used.system), ...(main !== undefined && mainAfter !== undefined && { mainThreadUsPerRequest: per(mainAfter - main) }) };
}

async function benchModel(modelName: string) {
  const [card] = await buildModels(dir, { only: [modelName] });
  if (!card) throw new Error(`${modelName} was not built`);
  const path = modelPath(dir, card.name);
  const [inputName, golden] = Object.entries(card.golden.inputs)[0] as [string, { shape: number[]; data: number[] }];
  // One row: the common case of an application asking about one sample.
  const width = golden.shape[1] as number;
  const row = golden.data.slice(0, width);
  const body = JSON.stringify({ inputs: [{ name: inputName, datatype: 'FP32', shape: [1, width], data: row }] });

  // The agent's local API, as the daemon runs it.
  const service = new InferenceService({ warmupRuns: 3, onnx });
  await service.load({ model: card.model, version: card.version, path, format: 'onnx', providers: ['cpu'] });
  const api = await startLocalApi({ inference: service, port: 0 });

  // The peer: a bare fastify route doing the same session.run on its own thread.
  const session = await openSession(path, 1);
  for (let i = 0; i < 10; i++) await session.run(goldenFeeds(card.golden));
  const bare = Fastify({ logger: false });
  bare.post('/infer', async (req) => {
    const input = (req.body as { inputs: Array<{ name: string; shape: number[]; data: number[] }> }).inputs[0]!;
    const results = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
    return {
      outputs: Object.entries(results).map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, data: Array.from(t.data as Float32Array) })),
    };
  });
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const barePort = (bare.server.address() as { port: number }).port;

  const targets = {
    localApi: { url: api.url, path: `/v2/models/${card.model}/infer` },
    bareFastify: { url: `http://127.0.0.1:${barePort}`, path: '/infer' },
  };
  for (const t of Object.values(targets)) await drive(t.url, t.path, body, 1000); // warm-up

  const runs: Record<keyof typeof targets, LoadResult[]> = { localApi: [], bareFastify: [] };
  for (let r = 0; r < reps; r++) {
    for (const key of (r % 2 ? ['bareFastify', 'localApi'] : ['localApi', 'bareFastify']) as Array<keyof typeof targets>) {
      const result = await drive(targets[key].url, targets[key].path, body, durationMs);
      runs[key].push(result);
      console.log(
        `${card.name} rep ${r + 1} ${key}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, CPU ${result.cpuUsPerRequest} µs/request (event loop ${result.mainThreadUsPerRequest ?? '?'}; load client ${result.clientCpuUsPerRequest}), errors ${result.errors}`,
      );
    }
  }
  await api.close();
  await bare.close();
  await service.close();
  await session.release();

  const localRps = median(runs.localApi.map((r) => r.rps));
  const bareRps = median(runs.bareFastify.map((r) => r.rps));
  const ratio = localRps / bareRps;
  const localCpu = median(runs.localApi.map((r) => r.cpuUsPerRequest ?? NaN));
  const bareCpu = median(runs.bareFastify.map((r) => r.cpuUsPerRequest ?? NaN));
  const localMain = median(runs.localApi.map((r) => r.mainThreadUsPerRequest ?? NaN));
  const bareMain = median(runs.bareFastify.map((r) => r.mainThreadUsPerRequest ?? NaN));
  console.log(
    `${card.name}: local API ${localRps.toFixed(0)} req/s vs bare fastify ${bareRps.toFixed(0)} req/s: ratio ${ratio.toFixed(3)} (target >= 0.8); CPU per request ${localCpu} vs ${bareCpu} µs, of it on the event loop ${localMain} vs ${bareMain} µs`,
  );
  return {
    model: card.name,
    sha256: card.sha256,
    bodyBytes: Buffer.byteLength(body),
    repetitions: runs,
    median: {
      localApiRps: localRps,
      bareFastifyRps: bareRps,
      localApiP50Ms: median(runs.localApi.map((r) => r.p50Ms)),
      bareFastifyP50Ms: median(runs.bareFastify.map((r) => r.p50Ms)),
      localApiCpuUsPerRequest: localCpu,
      bareFastifyCpuUsPerRequest: bareCpu,
      localApiEventLoopUsPerRequest: localMain,
      bareFastifyEventLoopUsPerRequest: bareMain,
      localApiClientCpuUsPerRequest: median(runs.localApi.map((r) => r.clientCpuUsPerRequest)),
      bareFastifyClientCpuUsPerRequest: median(runs.bareFastify.map((r) => r.clientCpuUsPerRequest)),
    },
    ratio,
  };
}

const loadAtStart = loadavg();
const perModel = [];
for (const name of models) perModel.push(await benchModel(name));
load?.kill();

const result = {
  bench: 'agent-http',
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, onnxruntime: ort.env.versions.common, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
  parameters: {
    body: 'KServe v2 JSON, one FP32 row of the model input',
    concurrency,
    secondsPerRep: durationMs / 1000,
    reps,
    client:
      client === 'wrk'
        ? `${wrkVersion ?? 'wrk'}, one thread, closed loop, keep-alive, one connection per concurrent request`
        : 'undici Pool closed loop in a separate process, keep-alive, one connection per loop',
    onnx,
  },
  models: perModel,
  target: 0.8,
};
const outDir = resolve(process.env.INIT_CWD ?? process.cwd(), 'bench-results');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'agent-http.json'), `${JSON.stringify(result, null, 2)}\n`);
