import type { Writable } from 'node:stream';

/**
 * Everything the CLI touches outside itself, injected so tests run commands in-process and read
 * what they printed. `stderrIsTTY` decides whether a progress bar is drawn.
 */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
  stderrIsTTY: boolean;
  /** Current directory relative file paths resolve against. */
  cwd: string;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stderrIsTTY: process.stderr.isTTY === true,
    cwd: process.cwd(),
  };
}
