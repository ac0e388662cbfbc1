/**
 * How long one `session.run` of heavy-conv-fp32 takes on one CPU thread (batch 1), the figure other
 * benchmarks lean on when they need a model that keeps a core busy for milliseconds.
 * Usage: pnpm --filter @flotilla/modelkit bench:heavy [--reps 5] [--runs 50]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildModels, goldenFeeds, modelPath, openSession } from '../src/index.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, runs: { type: 'string', default: '50' } } });
const reps = Number(values.reps);
const runs = Number(values.runs);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const dir = join(tmpdir(), 'flotilla-modelkit-bench-models');
const [card] = await buildModels(dir, { only: ['heavy-conv-fp32'] });
if (!card) throw new Error('heavy-conv-fp32 was not built');
const session = await openSession(modelPath(dir, card.name), 1);
const feeds = goldenFeeds(card.golden);
for (let i = 0; i < 10; i++) await session.run(feeds); // warm-up

const repetitions: Array<{ medianMs: number; minMs: number }> = [];
for (let r = 0; r < reps; r++) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  repetitions.push({ medianMs: median(times), minMs: Math.min(...times) });
}
await session.release();

const result = {
  bench: 'modelkit-heavy-run',
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, onnxruntime: ort.env.versions.common },
  parameters: { model: card.name, sha256: card.sha256, batch: 1, intraOpThreads: 1, reps, runsPerRep: runs },
  repetitions,
  medianMs: median(repetitions.map((r) => r.medianMs)),
};
const outDir = resolve(process.env.INIT_CWD ?? process.cwd(), 'bench-results');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'modelkit-heavy-run.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(`heavy-conv-fp32: median ${result.medianMs.toFixed(2)} ms per session.run (1 thread, batch 1; reps: ${repetitions.map((r) => r.medianMs.toFixed(2)).join(', ')})`);
