import { isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliIo } from './cli-io.ts';
import { ApiClient } from './http-client.ts';
import { Output } from './output.ts';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

/** The global options every command accepts (declared once on the root program). */
export interface GlobalOptions {
  server?: string;
  token?: string;
  json?: boolean;
}

/**
 * One run of one command: its output settings and, on first use, its server connection. The
 * runner closes it when the command ends, whatever the outcome.
 */
export class Invocation {
  readonly io: CliIo;
  readonly out: Output;
  readonly serverUrl: string;
  readonly #token: string | undefined;
  #client: ApiClient | undefined;

  constructor(io: CliIo, globals: GlobalOptions) {
    this.io = io;
    this.out = new Output({ json: globals.json === true, stdout: io.stdout, stderr: io.stderr });
    this.serverUrl = nonEmpty(globals.server) ?? nonEmpty(io.env.FLOTILLA_SERVER_URL) ?? DEFAULT_SERVER_URL;
    this.#token = nonEmpty(globals.token) ?? nonEmpty(io.env.FLOTILLA_TOKEN);
  }

  get client(): ApiClient {
    this.#client ??= new ApiClient({ baseUrl: this.serverUrl, token: this.#token });
    return this.#client;
  }

  /** A path from the command line, relative to the caller's working directory. */
  path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.io.cwd, p);
  }

  /** A progress bar is drawn only for people watching a terminal. */
  get showProgress(): boolean {
    return !this.out.json && this.io.stderrIsTTY;
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** Runs a command body with its invocation and closes it after. */
export async function withInvocation(io: CliIo, cmd: Command, body: (inv: Invocation) => Promise<void>): Promise<void> {
  const inv = new Invocation(io, cmd.optsWithGlobals<GlobalOptions>());
  try {
    await body(inv);
  } finally {
    await inv.close();
  }
}
