import { writeFileSync } from 'node:fs';
import { targetNamed } from './targets/index.ts';

/**
 * Runs one fuzz target in this process and writes its report as JSON. Started by run.ts, one child
 * per target, so a native crash or a hang ends only that target and is counted as a crash.
 */
const env = process.env;
const name = env.FLOTILLA_FUZZ_CHILD_TARGET;
const out = env.FLOTILLA_FUZZ_CHILD_OUT;
if (!name || !out) throw new Error('run-target.ts is started by test/fuzz/run.ts');
const report = await targetNamed(name).run({
  runs: Number(env.FLOTILLA_FUZZ_CHILD_RUNS),
  seed: Number(env.FLOTILLA_FUZZ_SEED),
  ...(env.FLOTILLA_FUZZ_PATH ? { path: env.FLOTILLA_FUZZ_PATH } : {}),
});
writeFileSync(out, JSON.stringify(report));
// Sockets or workers a failing target left behind must not keep the child alive.
process.exit(0);
