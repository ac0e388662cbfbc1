export { buildProgram, runCli, CLI_VERSION } from './program.ts';
export { processIo, type CliIo } from './cli-io.ts';
export { CliError, EXIT, type ExitCode } from './cli-errors.ts';
export { ApiClient, apiPath, type ApiClientOptions } from './http-client.ts';
