import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface DemoArgs {
  keep: boolean;
  modelsDir: string;
  help: boolean;
}

export const USAGE = `Usage: pnpm demo [--keep] [--models <dir>]

Runs the whole Flotilla loop on this machine: a control server, a cloud pool worker and three
edge agents as separate processes on loopback; MNIST model releases v1, v2 and a broken v3;
a staged rollout of v2 under live inference traffic with escalation to the pool; and a rollout
of v3 that fails on its canary, aborts and reverts. Ends with a summary table; exits 0 only when
every check passed.

  --keep          keep the work folder (data folders and logs of every process)
  --models <dir>  model kit build cache (default: <tmp>/flotilla-demo-models)
  -h, --help      this text
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses the demo's command line. Unknown options are refused rather than ignored. */
export function parseArgs(argv: readonly string[]): DemoArgs {
  const args: DemoArgs = { keep: false, modelsDir: join(tmpdir(), 'flotilla-demo-models'), help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--keep') args.keep = true;
    else if (a === '-h' || a === '--help') args.help = true;
    else if (a === '--models' || a.startsWith('--models=')) {
      const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!value) throw new UsageError('--models needs a folder');
      args.modelsDir = resolve(value);
    } else if (a === '--') continue;
    else throw new UsageError(`unknown option ${a}`);
  }
  return args;
}
