/**
 * bench:pool. Throughput of the pool worker with dynamic batching against the same worker with
 * batching off (every request its own session run), at concurrency 16, one MNIST-shaped row per
 * request (binary tensor extension), both workers with the same number of worker threads, for two
 * cloud models in one run:
 *   - mnist-cloud (784→128→64→10): so small that a batch-1 run costs about what the HTTP hand-off
 *     around it costs, so batching has little to amortize;
 *   - wide-mlp (784→2048→2048→2048→10, 40 MB of weights): a batch-1 run is memory-bound and takes
 *     milliseconds, the regime of the large models a GPU pool serves, where batching pays.
 * Each worker is its own process (src/main.ts, configured by FLOTILLA_POOL_* variables, as deployed)
 * serving both models; the load comes from a third process. Reps alternate (and alternate which
 * goes first) so machine noise hits both alike. Target: batched ≥ 3× batch-size-1 (median
 * requests/s) on the large model.
 * Usage: pnpm bench:pool [--reps 5] [--seconds 4] [--concurrency 16] [--max-batch 32] [--delay-us 1000] [--instances 1] [--models mnist-cloud,wide-mlp]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem, release, platform, arch } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeInferRequest } from '@flotilla/kserve';
import { buildModels, modelDir, modelPath } from '@flotilla/modelkit';
import { OnnxRuntimeBackend } from '@flotilla/agent/inference';
import { DynamicBatcher } from '../src/index.ts';
import type { LoadJob, LoadResult } from '../../../bench/http-load-client.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '16' },
    'max-batch': { type: 'string', default: '32' },
    'delay-us': { type: 'string', default: '1000' },
    instances: { type: 'string', default: '1' },
    'inprocess-seconds': { type: 'string', default: '2' },
    models: { type: 'string', default: 'mnist-cloud,wide-mlp' },
    out: { type: 'string', default: 'bench-results/pool-batching.json' },
  },
});
const reps = Number(values.reps);
const durationMs = Number(values.seconds) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const concurrency = Number(values.concurrency);
const maxBatchSize = Number(values['max-batch']);
const maxQueueDelayUs = Number(values['delay-us']);
const instances = Number(values.instances);

/** The models measured: name at the pool, model kit build, and what the JSON says about it. */
const ALL_MODELS = [
  { name: 'mnist-cloud', build: 'mnist-cloud-fp32', what: 'mnist-cloud-fp32 (784→128→64→10, trained, 0.4 MB)' },
  { name: 'wide-mlp', build: 'wide-mlp-fp32', what: 'wide-mlp-fp32 (784→2048→2048→2048→10, seeded random weights, 40 MB)' },
] as const;
type BenchModel = (typeof ALL_MODELS)[number];
const wanted = (values.models as string).split(',').map((m) => m.trim());
const MODELS: BenchModel[] = ALL_MODELS.filter((m) => wanted.includes(m.name));
if (MODELS.length === 0) throw new Error(`--models: pick from ${ALL_MODELS.map((m) => m.name).join(', ')}`);
const here = fileURLToPath(new URL('.', import.meta.url));
const mainFile = resolve(here, '../src/main.ts');
const root = resolve(here, '../../..');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function packageVersion(name: string): Promise<string> {
  const require = (await import('node:module')).createRequire(join(here, '../package.json'));
  try {
    return (JSON.parse(await readFile(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface Worker {
  name: string;
  url: string;
  child: ChildProcess;
}

/** Starts src/main.ts with the given FLOTILLA_POOL_* settings and waits for its "listening" line. */
function startWorker(name: string, repo: string, env: Record<string, string>): Promise<Worker> {
  const child = spawn(process.execPath, ['--import', 'tsx', mainFile], {
    cwd: resolve(here, '..'),
    env: { ...process.env, FLOTILLA_POOL_MODEL_REPOSITORY: repo, FLOTILLA_POOL_HOST: '127.0.0.1', FLOTILLA_POOL_PORT: '0', FLOTILLA_POOL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { msg?: string; url?: string };
        if (msg.msg === 'pool worker listening' && msg.url) ok({ name, url: msg.url, child });
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => fail(new Error(`${name} worker exited with code ${code} before listening`)));
  });
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.child.exitCode !== null) return;
  const exited = new Promise((ok) => w.child.once('exit', ok));
  w.child.kill('SIGTERM');
  await exited;
}

/** Session runs and rows so far for one model, from the worker's own metrics. */
async function runStats(url: string, model: string): Promise<{ runs: number; rows: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (metric: string): number => Number(new RegExp(`^flotilla_pool_batch_size_${metric}\\{model="${model}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { runs: value('count'), rows: value('sum') };
}

// The cloud models, built (or reused) by the model kit, placed in a Triton-layout repository.
const buildDir = join(tmpdir(), 'flotilla-pool-models');
await buildModels(buildDir, { only: ['mnist-cloud-fp32', ...MODELS.map((m) => m.build)] });
const repo = await mkdtemp(join(tmpdir(), 'flotilla-pool-bench-'));
for (const m of MODELS) {
  await mkdir(join(repo, m.name, '1'), { recursive: true });
  await copyFile(modelPath(buildDir, m.build), join(repo, m.name, '1', 'model.onnx'));
}
const evalSet = JSON.parse(await readFile(join(modelDir(buildDir, 'mnist-cloud-fp32'), 'eval-set.json'), 'utf8')) as { data: number[][] };
const digit = Float32Array.from(evalSet.data[0] as number[]);
const encoded = encodeInferRequest(
  { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit }], binaryOutput: true },
  { binaryInputs: true },
);
const body = encoded.body as Uint8Array;
const job = (url: string, model: BenchModel, ms: number): LoadJob => ({
  url,
  path: `/v2/models/${model.name}/infer`,
  body: Buffer.from(body).toString('base64'),
  headerLength: encoded.headerLength as number,
  concurrency,
  durationMs: ms,
});

const common = { FLOTILLA_POOL_INSTANCES: String(instances), FLOTILLA_POOL_MAX_BATCH_SIZE: String(maxBatchSize), FLOTILLA_POOL_MAX_QUEUE_SIZE: '1024' };
const loadBefore = loadavg();
const workers = await Promise.all([
  startWorker('batched', repo, { ...common, FLOTILLA_POOL_DYNAMIC_BATCHING: 'true', FLOTILLA_POOL_MAX_QUEUE_DELAY_US: String(maxQueueDelayUs) }),
  startWorker('unbatched', repo, { ...common, FLOTILLA_POOL_DYNAMIC_BATCHING: 'false' }),
]);
const [batched, unbatched] = workers as [Worker, Worker];

const client = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../../bench/http-load-client.ts', import.meta.url))], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
await new Promise<void>((ok) => client.once('message', () => ok()));
const drive = (j: LoadJob) =>
  new Promise<LoadResult>((ok) => {
    client.once('message', (m) => ok(m as LoadResult));
    client.send(j);
  });

type Rep = LoadResult & { model: string; worker: string; rep: number; meanBatchRows: number; loadavg1: number };
const results: Rep[] = [];
try {
  for (const m of MODELS) {
    for (const w of workers) await drive(job(w.url, m, warmupMs));
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? [batched, unbatched] : [unbatched, batched];
      for (const w of order) {
        const before = await runStats(w.url, m.name);
        const r = await drive(job(w.url, m, durationMs));
        const after = await runStats(w.url, m.name);
        const runs = after.runs - before.runs;
        const row: Rep = { ...r, model: m.name, worker: w.name, rep, meanBatchRows: runs > 0 ? (after.rows - before.rows) / runs : 0, loadavg1: loadavg()[0] as number };
        results.push(row);
        console.log(
          `${m.name.padEnd(11)} rep ${rep} ${w.name.padEnd(9)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  mean batch ${row.meanBatchRows.toFixed(1)}  errors ${r.errors}  load ${row.loadavg1.toFixed(2)}`,
        );
      }
    }
  }
} finally {
  client.kill();
  await Promise.allSettled(workers.map(stopWorker));
  await rm(repo, { recursive: true, force: true });
}

/**
 * The same comparison without HTTP: 16 closed loops submitting straight to the batcher in front of
 * the worker thread. It shows what batching buys where session runs are the bottleneck, and how
 * much of the HTTP figure the HTTP layer itself costs.
 */
async function inProcess(model: BenchModel): Promise<{ batched: number[]; unbatched: number[] }> {
  const ms = Number(values['inprocess-seconds']) * 1000;
  const out = { batched: [] as number[], unbatched: [] as number[] };
  if (ms <= 0) return out;
  const loaded = await new OnnxRuntimeBackend({ intraOpThreads: 1, laneBytes: 1024 * 1024, workersPerModel: instances }).load({
    model: model.name,
    version: '1',
    path: modelPath(buildDir, model.build),
    format: 'onnx',
    providers: ['cpu'],
  });
  const timers = { now: () => performance.now(), setTimeout: (fn: () => void, t: number) => setTimeout(fn, t), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
  const policy = { maxBatchSize, maxQueueDelayUs, preferredBatchSizes: [], maxQueueSize: 1024, instances };
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const dynamicBatching of rep % 2 === 0 ? [true, false] : [false, true]) {
        const b = new DynamicBatcher((inputs, outputs) => loaded.infer(inputs, { transfer: true, validated: true, ...(outputs && { outputs }) }), { ...policy, dynamicBatching }, { timers });
        let done = 0;
        const start = performance.now();
        const end = start + ms;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (performance.now() < end) {
              await b.submit([{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit.slice() }], { timeoutMs: 10_000 });
              done++;
            }
          }),
        );
        const rps = (done / (performance.now() - start)) * 1000;
        await b.close();
        (dynamicBatching ? out.batched : out.unbatched).push(rps);
        console.log(`${model.name.padEnd(11)} in-process rep ${rep} ${dynamicBatching ? 'batched  ' : 'unbatched'} ${rps.toFixed(0).padStart(6)} req/s`);
      }
    }
  } finally {
    await loaded.unload();
  }
  return out;
}
const ort = (await import('onnxruntime-node')).env.versions.common;
const perModel: Record<string, unknown> = {};
const lines: string[] = [];
for (const m of MODELS) {
  const inproc = await inProcess(m);
  const of = (name: string) => results.filter((r) => r.model === m.name && r.worker === name);
  const summary = (name: string) => ({
    rps: median(of(name).map((r) => r.rps)),
    p50Ms: median(of(name).map((r) => r.p50Ms)),
    p99Ms: median(of(name).map((r) => r.p99Ms)),
    meanBatchRows: median(of(name).map((r) => r.meanBatchRows)),
  });
  const medians = { batched: summary('batched'), unbatched: summary('unbatched') };
  const ratio = medians.batched.rps / medians.unbatched.rps;
  const inRatio = median(inproc.batched) / median(inproc.unbatched);
  perModel[m.name] = {
    model: m.what,
    medians,
    ratio,
    inProcess: {
      what: 'the same batcher and worker thread driven directly by 16 loops in one process (no HTTP, no client process)',
      reps: inproc,
      medians: { batched: median(inproc.batched), unbatched: median(inproc.unbatched) },
      ratio: inRatio,
    },
    pass: ratio >= 3,
  };
  lines.push(
    `${m.name}: batched ${medians.batched.rps.toFixed(0)} req/s (mean batch ${medians.batched.meanBatchRows.toFixed(1)}) vs batch size 1 ${medians.unbatched.rps.toFixed(0)} req/s: ${ratio.toFixed(2)}× over HTTP (target ≥ 3×); in process ${inRatio.toFixed(2)}×`,
  );
}
const ratios = Object.fromEntries(Object.entries(perModel).map(([k, v]) => [k, (v as { ratio: number }).ratio]));
const out = {
  bench: 'pool-batching',
  date: new Date().toISOString(),
  command: 'pnpm bench:pool',
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${platform()} ${release()} ${arch()}`,
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
    note: 'shared 2-core machine; other engineers run tests at the same time',
  },
  versions: { node: process.version, onnxruntime: ort, fastify: await packageVersion('fastify'), undici: await packageVersion('undici'), pool: (JSON.parse(await readFile(join(here, '../package.json'), 'utf8')) as { version: string }).version },
  params: { models: MODELS.map((m) => m.what), body: 'binary tensor extension, one MNIST digit [1,784] FP32', concurrency, durationMs, warmupMs, reps, maxBatchSize, maxQueueDelayUs, instances, intraOpThreads: 1 },
  reps: results,
  models: perModel,
  ratios,
  target: { ratio: 3, model: 'wide-mlp', anchor: "Triton's docs: ~3.7× on Inception with dynamic batching" },
  pass: (ratios['wide-mlp'] ?? 0) >= 3,
};
await mkdir(resolve(root, 'bench-results'), { recursive: true });
const outPath = resolve(root, values.out as string);
await writeFile(outPath, `${JSON.stringify(out, null, 2)}\n`);
console.log('');
for (const line of lines) console.log(line);
console.log(`load ${loadBefore.map((l) => l.toFixed(2)).join(' ')} → ${out.machine.loadavgAfter.map((l) => l.toFixed(2)).join(' ')}`);
console.log(`wrote ${outPath}`);
