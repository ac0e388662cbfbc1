import type { ErrorCode } from '@flotilla/protocol';

/** Process exit statuses: scripts and CI pipelines branch on these. */
export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A failure the CLI reports with a stable code. `code` is a string rather than `ErrorCode` for
 * server answers: a newer server may send a code this CLI does not know yet, and it is still
 * printed as sent.
 */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly status: number | undefined;
  readonly details: unknown;

  constructor(code: string, message: string, opts: { exitCode?: ExitCode; status?: number; details?: unknown } = {}) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = opts.exitCode ?? EXIT.refused;
    this.status = opts.status;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.details !== undefined ? { details: this.details } : {}),
    };
  }
}

/** The command line itself is wrong (missing option, unreadable file, bad value): exit 2. */
export function usageError(message: string, details?: unknown): CliError {
  const code: ErrorCode = 'FLT_CLI_USAGE';
  return new CliError(code, message, { exitCode: EXIT.usage, details });
}

/** A check the CLI makes itself failed (e.g. the server measured other bytes than were sent): exit 1. */
export function checkFailed(code: ErrorCode, message: string, details?: unknown): CliError {
  return new CliError(code, message, { exitCode: EXIT.refused, details });
}
