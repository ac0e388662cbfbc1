import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, USAGE, UsageError, type DemoArgs } from './options.ts';
import { ProgressLog } from './report/progress-log.ts';

/** Exit statuses: 0 every check passed, 1 something did not happen as expected, 2 bad usage, 130 interrupted. */
const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

async function main(): Promise<number> {
  let args: DemoArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }

  const interrupt = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // The first Ctrl-C stops the story and shuts every process down cleanly; a second one gives up
    // waiting (the exit hook still kills every child). A repeat within a second is the same Ctrl-C
    // relayed by a wrapper (pnpm, tsx), not a second one.
    if (firstSignalAt > 0) {
      if (Date.now() - firstSignalAt > 1_000) process.exit(EXIT.interrupted);
      return;
    }
    firstSignalAt = Date.now();
    process.stdout.write(`\n${signal}: stopping the demo and every process it started…\n`);
    interrupt.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const workDir = mkdtempSync(join(tmpdir(), 'flotilla-demo-'));
  const log = new ProgressLog((text) => process.stdout.write(text));
  log.raw(`Flotilla demo: server, pool worker and three agents on loopback (work folder ${workDir})`);
  // Loaded only now: a usage error or --help answers without loading the model kit and onnxruntime.
  const { runDemo } = await import('./run-demo.ts');
  const outcome = await runDemo({ workDir, modelsDir: args.modelsDir, log, signal: interrupt.signal });

  // A failed run keeps its folder: the logs of every process are what explains it.
  const keep = args.keep || !outcome.ok;
  if (keep) log.raw(`Data folders and logs kept in ${workDir} (logs/ has one file per process).`);
  else rmSync(workDir, { recursive: true, force: true });

  if (interrupt.signal.aborted) return EXIT.interrupted;
  if (outcome.error) {
    process.stderr.write(`\nThe demo stopped early: ${outcome.error.message}\n`);
    return EXIT.failed;
  }
  if (!outcome.ok) {
    process.stderr.write(`\nThe demo finished, but ${outcome.checks.filter((c) => !c.ok).length} check(s) failed (see the summary above).\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.failed);
  },
);
