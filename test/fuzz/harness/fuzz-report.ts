import fc from 'fast-check';

/** What one fuzz target did: the figures docs/reliability.md publishes for the latest full run. */
export interface TargetReport {
  target: string;
  /** Property runs executed (fast-check stops at the first failing run and shrinks it). */
  runs: number;
  /** Runs whose property failed: a wrong answer, an untyped refusal, an accepted forgery, a hang. */
  failures: number;
  /** Uncaught exceptions, unhandled rejections, errors a safety net caught and logged, the process dying. */
  crashes: number;
  /** HTTP answers with a status of 500 or more. */
  status5xx: number;
  seed: number;
  /** fast-check's replay path of the failing run, with `seed`. */
  path: string | null;
  counterexample: string | null;
  error: string | null;
  /** How the runs ended, by outcome (an error code, an HTTP status, `accepted`): shows what was reached. */
  outcomes: Record<string, number>;
  /** Milliseconds: of the runs in the target process; of the whole child process in the full run's report. */
  ms: number;
}

export interface RunOptions {
  runs: number;
  seed: number;
  /** Replays one failing run of an earlier report. */
  path?: string;
  /** Skip shrinking; for targets where one run costs a process-visible resource (a socket, a session). */
  endOnFailure?: boolean;
}

/**
 * Collects what a property cannot see in its return value: crashes caught by safety nets, 5xx
 * answers and the tally of outcomes. A property calls `clean()` at the end of each run so the run
 * that caused a crash is the one fast-check reports.
 */
export class FuzzProbe {
  readonly outcomes = new Map<string, number>();
  readonly crashes: string[] = [];
  status5xx = 0;
  #seenCrashes = 0;

  tally(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  crash(what: string): void {
    this.crashes.push(what.slice(0, 2000));
  }

  /** True when no crash was recorded since the last call. */
  clean(): boolean {
    const fresh = this.crashes.length === this.#seenCrashes;
    this.#seenCrashes = this.crashes.length;
    return fresh;
  }

  /**
   * Drops the crashes recorded from index `from` on: used only when a run matched a reported,
   * not yet fixed finding, which is tallied as `known:<id>` instead of hiding it.
   */
  forgetSince(from: number): void {
    this.crashes.splice(from);
    this.#seenCrashes = Math.min(this.#seenCrashes, this.crashes.length);
  }

  /** Throws the crashes recorded since the last check, so the run that caused them fails with their text. */
  assertClean(): true {
    const fresh = this.crashes.slice(this.#seenCrashes);
    this.#seenCrashes = this.crashes.length;
    if (fresh.length > 0) throw new Error(`crash during this run: ${fresh.join('\n')}`);
    return true;
  }
}

const MAX_TEXT = 2000;

function describe(value: unknown): string {
  try {
    return fc.stringify(value).slice(0, MAX_TEXT);
  } catch {
    return String(value).slice(0, MAX_TEXT);
  }
}

/**
 * Runs a property under fast-check with a fixed seed and turns the outcome into a report. Uncaught
 * exceptions and unhandled rejections raised while it runs are recorded as crashes.
 */
export async function checkTarget<Ts>(target: string, probe: FuzzProbe, property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>, opts: RunOptions): Promise<TargetReport> {
  const started = Date.now();
  const onUncaught = (err: unknown) => probe.crash(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  const onRejection = (err: unknown) => probe.crash(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  let details: fc.RunDetails<Ts>;
  try {
    details = await fc.check(property as fc.IAsyncProperty<Ts>, {
      numRuns: opts.runs,
      seed: opts.seed,
      ...(opts.path ? { path: opts.path } : {}),
      endOnFailure: opts.endOnFailure ?? false,
    });
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
  }
  const err = details.errorInstance as Error | null;
  return {
    target,
    runs: details.numRuns,
    failures: details.failed ? 1 : 0,
    crashes: probe.crashes.length,
    status5xx: probe.status5xx,
    seed: details.seed,
    path: details.counterexamplePath,
    counterexample: details.counterexample === null ? null : describe(details.counterexample),
    error: err ? (err.message || String(err)).slice(0, MAX_TEXT) : probe.crashes[0] ?? null,
    outcomes: Object.fromEntries([...probe.outcomes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    ms: Date.now() - started,
  };
}

/** One line a developer can paste to replay a failing run. */
export function replayHint(r: TargetReport): string {
  return `FLOTILLA_FUZZ_TARGETS=${r.target} FLOTILLA_FUZZ_SEED=${r.seed}${r.path ? ` FLOTILLA_FUZZ_PATH=${r.path}` : ''} pnpm test:fuzz`;
}

/** A failing report as text for a test assertion message. */
export function explain(r: TargetReport): string {
  if (r.failures === 0 && r.crashes === 0 && r.status5xx === 0) return `${r.target}: clean after ${r.runs} runs`;
  return [
    `${r.target}: ${r.failures} failure(s), ${r.crashes} crash(es), ${r.status5xx} 5xx after ${r.runs} runs`,
    `error: ${r.error ?? '-'}`,
    `counterexample: ${r.counterexample ?? '-'}`,
    `replay: ${replayHint(r)}`,
  ].join('\n');
}
