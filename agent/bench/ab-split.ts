/**
 * pnpm bench:agent:ab [-- --reps R --iterations N --quick]
 *
 * The cost of A/B routing on the device (docs/ota.md, "A/B traffic"): the arm decision alone, and
 * answer latency with a split against none in the same run. Prints each repetition and writes
 * bench-results/agent-ab.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModels, modelPath } from '@flotilla/modelkit';
import { arg } from './stats.ts';
import { runAbCost } from './inprocess/ab-cost.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.argv.includes('--quick');
const reps = arg('reps', quick ? 2 : 5);

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-ab-'));
try {
  console.log('building models…');
  await buildModels(dir, { only: ['mnist-edge-int8'] });
  const startLoad = loadavg();
  console.log('A/B routing cost, mnist-edge-int8 batch 1, share 0.5, same build on both arms (off, share 0, share 0.5)');
  const ab = await runAbCost({ modelPath: modelPath(dir, 'mnist-edge-int8'), iterations: arg('iterations', quick ? 1000 : 4000), decisions: 1_000_000, warmup: 500, reps });
  const require = createRequire(import.meta.url);
  const result = {
    bench: 'agent-ab',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryBytes: totalmem(), loadAverageAtStart: startLoad, loadAverageAtEnd: loadavg() },
    versions: { node: process.version, onnxruntimeNode: (require('onnxruntime-node/package.json') as { version: string }).version },
    ab,
  };
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  writeFileSync(join(root, 'bench-results', 'agent-ab.json'), JSON.stringify(result, null, 2) + '\n');
  const m = ab.medians;
  console.log('\nsummary (medians)');
  console.log(`  decision: ${m.pickUnkeyedNs} ns unkeyed, ${m.pickStickyNs} ns sticky`);
  console.log(`  answer p50: off ${m.offP50Us} µs vs share 0 ${m.share0P50Us} µs (+${m.share0AddedP50Us} µs, ×${m.share0Ratio}; bookkeeping only)`);
  console.log(`  answer p50: off ${m.offP50Us} µs vs share 0.5 ${m.abP50Us} µs (+${m.addedP50Us} µs, ×${m.ratio})`);
  console.log('  wrote bench-results/agent-ab.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
