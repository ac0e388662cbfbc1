import { Writable } from 'node:stream';
import { runCli } from '../../src/index.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as the one JSON document `--json` prints. */
  // The tests read answers by path, each asserting the shape it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any;
}

function sink(tty = false): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  // A pretend terminal, for the progress bar (it draws only where `isTTY` is true).
  if (tty) Object.assign(stream, { isTTY: true, columns: 120 });
  return { stream, text: () => chunks.join('') };
}

/**
 * Runs one `flotilla` command line in this process, against `env` instead of the real
 * environment, and returns what it printed and its exit status.
 */
export async function flotilla(argv: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; tty?: boolean } = {}): Promise<CliRun> {
  const out = sink();
  const err = sink(opts.tty);
  const code = await runCli(argv, { stdout: out.stream, stderr: err.stream, env: opts.env ?? {}, stderrIsTTY: opts.tty === true, cwd: opts.cwd ?? process.cwd() });
  const stdout = out.text();
  return { code, stdout, stderr: err.text(), json: () => JSON.parse(stdout) };
}
