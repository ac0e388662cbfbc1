/**
 * pnpm bench:agent [-- --reps R --iterations N --quick --only a,c --load-nice 0]
 *
 * The agent's in-process inference figures: (a) overhead of InferenceService.infer over raw
 * session.run, (b) event-loop lag under back-to-back heavy inference, (c) hot swap at 200
 * requests/s, (d) result-cache cost per request, (e) shadow-mode cost per request. Prints each repetition and writes
 * bench-results/agent-inprocess.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';
import { arg } from './stats.ts';
import { runEventLoop } from './inprocess/event-loop.ts';
import { runHotSwap } from './inprocess/hot-swap.ts';
import { runOverhead } from './inprocess/overhead.ts';
import { runCacheCost } from './inprocess/cache-cost.ts';
import { runShadowCost } from './inprocess/shadow-cost.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.argv.includes('--quick');
const reps = arg('reps', quick ? 2 : 5);
const onlyAt = process.argv.indexOf('--only');
// --only a,c runs just those parts (the others are left out of the JSON).
const parts = new Set(onlyAt > 0 ? (process.argv[onlyAt + 1] ?? '').split(',') : ['a', 'b', 'c', 'd', 'e']);
const part = async <T,>(name: string, title: string, fn: () => Promise<T>): Promise<T | undefined> => {
  if (!parts.has(name)) return undefined;
  console.log(`(${name}) ${title}`);
  return fn();
};

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-agent-'));
try {
  console.log('building models…');
  const cards = new Map((await buildModels(dir, { only: ['tiny-mlp-fp32', 'mnist-edge-int8', 'heavy-conv-fp32'] })).map((c) => [c.name, c]));
  const startLoad = loadavg();

  const overhead = await part('a', 'in-process overhead over raw session.run, tiny-mlp-fp32 batch 1', () =>
    runOverhead({ modelPath: modelPath(dir, 'tiny-mlp-fp32'), iterations: arg('iterations', quick ? 1000 : 5000), warmup: 1000, reps }),
  );
  const eventLoop = await part('b', 'event-loop lag, heavy-conv-fp32 back to back', () =>
    runEventLoop({ modelPath: modelPath(dir, 'heavy-conv-fp32'), durationMs: arg('duration', quick ? 1000 : 3000), reps: Math.min(reps, 3) }),
  );
  const hotSwap = await part('c', 'hot swap at 200 requests/s, mnist-edge-int8', () =>
    runHotSwap({
      modelPath: modelPath(dir, 'mnist-edge-int8'),
      golden: (cards.get('mnist-edge-int8') as ModelCard).golden,
      rate: 200,
      windowMs: arg('window', quick ? 2000 : 4000),
      reps,
      ...(process.argv.includes('--load-nice') ? { loadNice: arg('load-nice', 10) } : {}),
    }),
  );
  const cache = await part('d', 'result-cache cost per request, tiny-mlp-fp32 batch 1', () =>
    runCacheCost({ modelPath: modelPath(dir, 'tiny-mlp-fp32'), iterations: arg('iterations', quick ? 1000 : 5000), warmup: 1000, reps }),
  );
  const shadow = await part('e', 'shadow-mode cost per request, mnist-edge-int8 batch 1, share 1.0', () =>
    runShadowCost({ modelPath: modelPath(dir, 'mnist-edge-int8'), iterations: arg('iterations', quick ? 1000 : 5000), warmup: 500, reps }),
  );

  const require = createRequire(import.meta.url);
  const result = {
    bench: 'agent-inprocess',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryBytes: totalmem(), loadAverageAtStart: startLoad, loadAverageAtEnd: loadavg() },
    versions: { node: process.version, onnxruntimeNode: (require('onnxruntime-node/package.json') as { version: string }).version },
    overhead,
    eventLoop,
    hotSwap,
    cache,
    shadow,
  };
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  // A partial run gets its own file so it does not replace the full one.
  const file = onlyAt > 0 ? `agent-inprocess-${[...parts].join('')}.json` : 'agent-inprocess.json';
  writeFileSync(join(root, 'bench-results', file), JSON.stringify(result, null, 2) + '\n');
  console.log('\nsummary');
  if (overhead) console.log(`  (a) overhead p50 (median of ${reps}): ` + Object.entries(overhead.medians).filter(([k]) => k !== 'raw').map(([k, v]) => `${k} +${v.overheadP50Us} µs (p99 +${v.overheadP99Us} µs)`).join(' | ') + `; raw p50 ${overhead.medians.raw?.p50Us} µs`);
  if (eventLoop) {
    const m = eventLoop.medians;
    console.log(`  (b) max event-loop lag: service ${m.serviceMaxLagMs} ms vs raw main thread ${m.rawMainThreadMaxLagMs} ms (idle machine noise ${m.idleMaxLagMs} ms); p99 ${m.serviceP99LagMs} / ${m.rawMainThreadP99LagMs} / ${m.idleP99LagMs} ms`);
    console.log(`      the loop's own share of it (max): service ${m.serviceOwnMaxLagMs} ms vs raw main thread ${m.rawMainThreadOwnMaxLagMs} ms, idle ${m.idleOwnMaxLagMs} ms; longest run-queue wait service ${m.serviceMaxRunQueueMs} ms, idle ${m.idleMaxRunQueueMs} ms; target ≤ 5 ms own: ${eventLoop.target.met ? 'met' : 'not met'}`);
  }
  if (hotSwap) console.log(`  (c) hot swap: steady p99 ${hotSwap.medians.steadyP99Ms} ms, swap p99 ${hotSwap.medians.swapP99Ms} ms, ratio ${hotSwap.medians.p99Ratio}, failed ${hotSwap.failedRequests}`);
  if (cache) console.log(`  (d) cache: lookup p50 hit ${cache.medians.lookupHitUs} µs, miss ${cache.medians.lookupMissUs} µs; through the service p50 hit ${cache.medians.hitP50Us} µs vs no cache ${cache.medians.plainP50Us} µs, miss +${cache.medians.missVsPlainUs} µs`);
  if (shadow) console.log(`  (e) shadow: answer p50 off ${shadow.medians.offP50Us} µs vs share 1.0 ${shadow.medians.shadowP50Us} µs (+${shadow.medians.addedP50Us} µs)`);
  console.log(`  wrote bench-results/${file}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
