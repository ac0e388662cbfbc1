import { Command, CommanderError } from 'commander';
import { CliError, EXIT, type ExitCode } from './cli-errors.ts';
import type { CliIo } from './cli-io.ts';
import { registerDeviceCommands } from './commands/devices/index.ts';
import { registerKeyCommands } from './commands/keys/index.ts';
import { registerModelCommands } from './commands/model/index.ts';
import { registerRolloutGroup } from './commands/rollout/index.ts';
import { DEFAULT_SERVER_URL } from './invocation.ts';

export const CLI_VERSION = '0.1.0';

/**
 * The whole `flotilla` command tree, writing only to `io`. Commander never exits the process
 * itself (`exitOverride`): `runCli` turns every outcome into an exit status.
 */
export function buildProgram(io: CliIo): Command {
  const program = new Command('flotilla')
    .description('Flotilla fleet and model registry command line')
    .version(CLI_VERSION, '-V, --cli-version', 'print the CLI version')
    .option('--server <url>', `control server URL (env FLOTILLA_SERVER_URL, default ${DEFAULT_SERVER_URL})`)
    .option('--token <token>', 'API token (env FLOTILLA_TOKEN)')
    .option('--json', 'print one machine-readable JSON document instead of text')
    // Settings below are copied to every subcommand created after them.
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)');
  registerModelCommands(program, io);
  registerKeyCommands(program, io);
  registerDeviceCommands(program, io);
  registerRolloutGroup(program, io);
  return program;
}

/** Runs one command line (without `node` and the script path) and returns its exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    return report(err, io, argv.includes('--json'));
  }
}

function report(err: unknown, io: CliIo, json: boolean): ExitCode {
  if (err instanceof CommanderError) {
    // Commander has already printed its message (or the help it was asked for).
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const failure = err instanceof CliError ? err : new CliError('FLT_INTERNAL', err instanceof Error ? err.stack ?? err.message : String(err));
  if (json) {
    io.stderr.write(`${JSON.stringify({ error: failure.toJSON() })}\n`);
  } else {
    const status = failure.status !== undefined ? ` (HTTP ${failure.status})` : '';
    io.stderr.write(`error: ${failure.code}: ${failure.message}${status}\n`);
  }
  return failure.exitCode;
}
