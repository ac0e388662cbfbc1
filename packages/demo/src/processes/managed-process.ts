import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { tsxLoader } from './entry-points.ts';

export interface ManagedProcessOptions {
  /** Short name used in progress lines and errors: `server`, `pool`, `edge-1`. */
  name: string;
  /** Absolute path of a TypeScript entry point, run through tsx's loader in the child itself. */
  entry: string;
  env: Record<string, string>;
  cwd: string;
  /** Everything the process prints, stdout and stderr, goes here. */
  logFile: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const TAIL_LINES = 40;

/**
 * One child process of the demo. It owns the child and its log file: `stop()` ends both, is
 * bounded (SIGTERM, then SIGKILL after the grace time) and safe to call twice.
 */
export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly exited: Promise<ExitInfo>;
  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  readonly #tail: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  #exit: ExitInfo | null = null;
  #stopping: Promise<void> | undefined;

  private constructor(opts: ManagedProcessOptions) {
    this.name = opts.name;
    this.logFile = opts.logFile;
    this.#log = createWriteStream(opts.logFile, { flags: 'a' });
    // A log that cannot be written (disk full) must not take the demo down; the tail stays in memory.
    this.#log.on('error', () => undefined);
    // `--import <loader>` rather than the tsx CLI: the child is the node process itself, so our
    // signals reach it directly and no wrapper process can be left behind.
    this.#child = spawn(process.execPath, ['--import', tsxLoader(), opts.entry], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches only the demo, which then stops
      // the children in order (agents before the server) instead of all at once.
      detached: true,
    });
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
      this.#child.once('error', (err) => {
        this.#line(`[demo] could not start ${opts.name}: ${err.message}`);
        this.#exit ??= { code: null, signal: null };
        resolve(this.#exit);
      });
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.#line(line));
    }
  }

  static start(opts: ManagedProcessOptions): ManagedProcess {
    return new ManagedProcess(opts);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#exit === null;
  }

  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** The last lines the process printed, for error messages. */
  tail(lines = 15): string {
    return this.#tail.slice(-lines).join('\n');
  }

  /**
   * Resolves with the first value `match` returns for a printed line (lines already printed
   * included), or rejects when the process exits first or the deadline passes.
   */
  waitForLine<T>(match: (line: string) => T | undefined, opts: { what: string; timeoutMs: number; signal?: AbortSignal }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const listener = (line: string): void => {
        const value = match(line);
        if (value !== undefined) done(() => resolve(value));
      };
      const onAbort = (): void => done(() => reject(opts.signal!.reason as Error));
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name}: timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what}\n${this.tail()}`))),
        opts.timeoutMs,
      );
      for (const line of this.#tail) {
        const value = match(line);
        if (value !== undefined) return done(() => resolve(value));
      }
      this.#listeners.add(listener);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      void this.exited.then((exit) => {
        if (this.#listeners.has(listener)) done(() => reject(new Error(`${this.name} exited (${describeExit(exit)}) before ${opts.what}\n${this.tail()}`)));
      });
    });
  }

  /** SIGTERM, then SIGKILL once `graceMs` passed; resolves when the process is gone and its log closed. */
  stop(graceMs = 8_000): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.running) {
        this.#child.kill('SIGTERM');
        const timer = setTimeout(() => this.kill(), graceMs);
        await this.exited;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => this.#log.end(resolve));
    })();
    return this.#stopping;
  }

  /** SIGKILL at once, synchronously: the last resort when the demo itself is exiting. */
  kill(): void {
    if (this.running) this.#child.kill('SIGKILL');
  }

  #line(line: string): void {
    // Output still buffered in the pipe can arrive after the exit that closed the log.
    if (!this.#log.writableEnded) this.#log.write(`${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    for (const l of [...this.#listeners]) l(line);
  }
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
