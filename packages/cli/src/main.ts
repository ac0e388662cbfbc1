import { processIo } from './cli-io.ts';
import { runCli } from './program.ts';

// A reader that stops early (`flotilla devices list | head`) is not a failure of the command.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
});

process.exitCode = await runCli(process.argv.slice(2), processIo());
