/**
 * pnpm bench:escalation — edge-to-cloud escalation figures (docs/escalation.md):
 *  (a) cloud unreachable (silent endpoint, refused connection): answer latency vs the 200 ms budget;
 *  (b) escalation bytes on the wire per request vs raw tensor bytes, counted at a TCP proxy;
 *  (c) the MNIST cascade on the 2,000 test digits: edge int8 in the agent's InferenceService, cloud
 *      fp32 in the pool worker (packages/pool, in this process) over HTTP; threshold curves for
 *      max-prob, margin and entropy, the chosen operating points, and a live pass through the
 *      Escalator at the chosen max-prob threshold;
 *  (d) added latency of an escalated request over a direct KServe v2 call to the same pool.
 * Writes bench-results/escalation.json. `--quick` for a short run.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModels, loadAllDigits, modelPath, splitDigits } from '@flotilla/modelkit';
// The pool worker depends on the agent package; reached by path to keep the workspace acyclic.
import { buildPoolWorker } from '../../packages/pool/src/index.ts';
import { CloudClient } from '../src/escalation/cloud-client.ts';
import { Escalator } from '../src/escalation/escalator.ts';
import { InferenceService } from '../src/inference/service/inference-service.ts';
import type { Tensor } from '../src/inference/types.ts';
import { accuracy, choose, curve, type CascadeData, type PolicyName } from './escalation/cascade.ts';
import { runAddedLatency, type AddedLatencyRun } from './escalation/added-latency.ts';
import { refusedUrl, startBlackhole, startKServeSink } from './escalation/bench-peers.ts';
import { runUnreachable, type UnreachableRun } from './escalation/unreachable.ts';
import { runWireBytes } from './escalation/wire-bytes.ts';
import { arg, median, round } from './stats.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.argv.includes('--quick');
const reps = arg('reps', quick ? 1 : 3);
const BUDGET_MS = 200;
const MNIST = { seed: 7, trainCount: 8000 };

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-escalation-'));
const closers: Array<() => Promise<unknown>> = [];
try {
  console.log('building models…');
  await buildModels(dir, { only: ['mnist-edge-int8', 'mnist-cloud-fp32'] });
  const repo = join(dir, 'pool-repo');
  mkdirSync(join(repo, 'mnist-cloud', '1'), { recursive: true });
  copyFileSync(modelPath(dir, 'mnist-cloud-fp32'), join(repo, 'mnist-cloud', '1', 'model.onnx'));
  const worker = buildPoolWorker({ config: { modelRepository: repo, host: '127.0.0.1', port: 0 } });
  await worker.start();
  const poolUrl = await worker.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => worker.close());
  const service = new InferenceService({ warmupRuns: 5 });
  closers.push(() => service.close());
  await service.load({ model: 'mnist-edge', version: '1.0.0', path: modelPath(dir, 'mnist-edge-int8'), format: 'onnx', providers: ['cpu'] });
  const test = splitDigits(loadAllDigits(), MNIST.seed, MNIST.trainCount).test;
  const digit = (i: number): Tensor[] => [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: test.x.slice(i * 784, (i + 1) * 784) }];
  const startLoad = loadavg();

  // (a) cloud unreachable
  console.log(`(a) cloud unreachable, budget ${BUDGET_MS} ms, mnist-edge-int8 local`);
  const hole = await startBlackhole();
  closers.push(() => hole.close());
  const refused = await refusedUrl();
  const requests = arg('requests', quick ? 40 : 200);
  const unreachable: Record<string, { reps: UnreachableRun[]; medianP50Ms: number; medianP99Ms: number; medianMaxMs: number; maxOverBudget: number }> = {};
  for (const [scenario, endpoint, breaker] of [
    ['blackhole', hole.url, 'off'],
    ['blackhole', hole.url, 'default'],
    ['refused', refused, 'off'],
  ] as const) {
    const runs: UnreachableRun[] = [];
    for (let r = 0; r < reps; r++) {
      let k = 0;
      runs.push(await runUnreachable({ local: service, model: 'mnist-edge', inputs: () => digit(k++ % test.count), endpoint, scenario, breaker, requests, concurrency: 10, budgetMs: BUDGET_MS }));
    }
    const key = `${scenario}/breaker-${breaker}`;
    unreachable[key] = {
      reps: runs,
      medianP50Ms: round(median(runs.map((x) => x.p50Ms))),
      medianP99Ms: round(median(runs.map((x) => x.p99Ms))),
      medianMaxMs: round(median(runs.map((x) => x.maxMs))),
      maxOverBudget: round(Math.max(...runs.map((x) => x.maxOverBudget)), 3),
    };
    const u = unreachable[key];
    console.log(`  ${key}: p50 ${u.medianP50Ms} ms, p99 ${u.medianP99Ms} ms, max ${u.medianMaxMs} ms (budget ${BUDGET_MS}; worst max/budget ${u.maxOverBudget}); over budget ${runs.map((x) => x.overBudget).join('/')} of ${requests}; event-loop delay max ${runs.map((x) => x.eventLoopDelayMaxMs).join('/')} ms; local p99 ${runs.map((x) => x.localP99Ms).join('/')} ms; answered ${JSON.stringify(runs[0]!.answeredBy)}`);
  }

  // (b) bytes on the wire
  console.log('(b) escalation bytes on the wire (client → pool, counted at a TCP proxy)');
  const sink = await startKServeSink();
  closers.push(() => sink.close());
  const poolPort = Number(new URL(poolUrl).port);
  const wire = [
    await runWireBytes({ peer: 'pool-worker', upstreamPort: poolPort, model: 'mnist-cloud', input: digit(0)[0]!, requests: 100 }),
    await runWireBytes({ peer: 'bench-sink', upstreamPort: sink.port, model: 'tiny', input: { name: 'input', datatype: 'FP32', shape: [1, 16], data: new Float32Array(16) }, requests: 100 }),
    await runWireBytes({ peer: 'bench-sink', upstreamPort: sink.port, model: 'resnet-input', input: { name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data: new Float32Array(3 * 224 * 224).fill(0.5) }, requests: 20 }),
  ];
  for (const w of wire) console.log(`  ${w.peer} [${w.shape.join('x')}]: ${w.wireBytesPerRequest} B/request for ${w.rawBytes} raw (${w.ratio}×; target ≤ ${w.targetBytes}: ${w.withinTarget ? 'met' : 'MISSED'})`);

  // (d) added latency of an escalated request over a direct KServe v2 call to the same pool
  console.log('(d) added latency: escalated request vs a direct KServe v2 call (binary extension) to the same pool, sequential');
  const latencyRuns: AddedLatencyRun[] = [];
  for (let r = 0; r < reps; r++) {
    latencyRuns.push(await runAddedLatency({ local: service, localModel: 'mnist-edge', cloudModel: 'mnist-cloud', poolUrl, inputs: (i) => digit(i % test.count), requests: quick ? 200 : 1000, block: 50, budgetMs: 5000 }));
    const l = latencyRuns[r]!;
    console.log(`  rep ${r + 1}: direct p50 ${l.direct.p50Ms} ms p99 ${l.direct.p99Ms}; always-cloud p50 ${l.alwaysCloud.p50Ms} p99 ${l.alwaysCloud.p99Ms} (+${l.addedP50Ms.alwaysCloud} ms); after local run p50 ${l.afterLocal.p50Ms} p99 ${l.afterLocal.p99Ms} (+${l.addedP50Ms.afterLocal} ms)`);
  }
  const addedLatency = {
    reps: latencyRuns,
    medianAddedP50Ms: { alwaysCloud: round(median(latencyRuns.map((x) => x.addedP50Ms.alwaysCloud)), 3), afterLocal: round(median(latencyRuns.map((x) => x.addedP50Ms.afterLocal)), 3) },
    medianRatioP50: { alwaysCloud: round(median(latencyRuns.map((x) => x.ratioP50.alwaysCloud)), 3), afterLocal: round(median(latencyRuns.map((x) => x.ratioP50.afterLocal)), 3) },
  };
  console.log(`  median added p50: always-cloud +${addedLatency.medianAddedP50Ms.alwaysCloud} ms (${addedLatency.medianRatioP50.alwaysCloud}×), after the local run +${addedLatency.medianAddedP50Ms.afterLocal} ms (${addedLatency.medianRatioP50.afterLocal}×)`);

  // (c) MNIST cascade
  console.log(`(c) MNIST cascade on ${test.count} test digits: edge int8 local, cloud fp32 in the pool worker`);
  const data: CascadeData = { labels: test.y, edge: [], cloud: new Array(test.count) };
  for (let i = 0; i < test.count; i++) data.edge.push((await service.infer('mnist-edge', digit(i))).outputs[0]!.data as Float32Array);
  const collector = new CloudClient({ probeIntervalMs: 0 });
  closers.push(() => collector.close());
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < test.count) {
        const i = next++;
        const a = await collector.infer({ model: 'mnist-cloud', inputs: digit(i), routes: [{ pool: 'local', endpoints: [poolUrl] }], requestId: `collect-${i}`, deadline: Date.now() + 30_000 });
        data.cloud[i] = a.outputs[0]!.data as Float32Array;
      }
    }),
  );
  const edgeOnly = accuracy(data.edge, data.labels);
  const cloudOnly = accuracy(data.cloud, data.labels);
  console.log(`  edge only ${edgeOnly} %, cloud only ${cloudOnly} %`);
  const steps = (from: number, to: number, step: number) => Array.from({ length: Math.round((to - from) / step) + 1 }, (_, i) => round(from + i * step, 4));
  const grids: Record<PolicyName, number[]> = { 'max-prob': steps(0.3, 1, 0.01), margin: steps(0, 1, 0.01), entropy: steps(0, 1, 0.01) };
  const curves = {} as Record<PolicyName, ReturnType<typeof curve>>;
  const chosen = {} as Record<PolicyName, ReturnType<typeof choose>>;
  for (const p of Object.keys(grids) as PolicyName[]) {
    curves[p] = curve(data, p, grids[p]);
    chosen[p] = choose(curves[p], cloudOnly);
    const c = chosen[p];
    console.log(`  ${p}: threshold ${c.threshold} → ${c.escalatedPct} % escalated, accuracy ${c.accuracyPct} % (cloud-only ${cloudOnly} %; target ${c.meetsTarget ? 'met' : 'MISSED'})`);
  }

  // Live pass at the chosen max-prob threshold, through the Escalator and the pool worker.
  const live = new CloudClient({ probeIntervalMs: 0 });
  closers.push(() => live.close());
  const escalator = new Escalator({ local: service, cloud: live });
  escalator.configure({ 'mnist-edge': { policy: { maxProbBelow: chosen['max-prob'].threshold, cloudModel: 'mnist-cloud', budgetMs: BUDGET_MS }, routes: [{ pool: 'local', endpoints: [poolUrl] }] } });
  let liveCorrect = 0;
  const where: Record<string, number> = {};
  for (let i = 0; i < test.count; i++) {
    const r = await escalator.infer('mnist-edge', digit(i));
    where[r.answeredBy] = (where[r.answeredBy] ?? 0) + 1;
    const p = r.outputs[0]!.data as Float32Array;
    if (p.indexOf(Math.max(...p)) === test.y[i]) liveCorrect++;
  }
  const liveResult = {
    threshold: chosen['max-prob'].threshold,
    answeredBy: where,
    escalatedPct: round((100 * ((where.cloud ?? 0) + (where['edge-fallback'] ?? 0))) / test.count, 2),
    accuracyPct: round((100 * liveCorrect) / test.count, 2),
  };
  console.log(`  live pass (max-prob ${liveResult.threshold}): ${JSON.stringify(where)}, accuracy ${liveResult.accuracyPct} %`);

  const require = createRequire(import.meta.url);
  const result = {
    bench: 'escalation',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryBytes: totalmem(), loadAverageAtStart: startLoad, loadAverageAtEnd: loadavg() },
    versions: { node: process.version, onnxruntimeNode: (require('onnxruntime-node/package.json') as { version: string }).version, undici: (require('undici/package.json') as { version: string }).version },
    parameters: { budgetMs: BUDGET_MS, reps, requestsPerRep: requests, concurrency: 10, quick },
    unreachable,
    wire,
    addedLatency,
    cascade: { digits: test.count, edgeOnlyPct: edgeOnly, cloudOnlyPct: cloudOnly, chosen, live: liveResult, curves },
  };
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  writeFileSync(join(root, 'bench-results', 'escalation.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('  wrote bench-results/escalation.json');
} finally {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
