/**
 * The demo's live output: one line per thing that happened, stamped with the seconds since the
 * demo started, and a heading per step of the story.
 */
export class ProgressLog {
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #start: number;
  #step = 0;

  constructor(write: (text: string) => void, now: () => number = Date.now) {
    this.#write = write;
    this.#now = now;
    this.#start = now();
  }

  /** Milliseconds since the log was made. */
  elapsedMs(): number {
    return this.#now() - this.#start;
  }

  step(title: string): void {
    this.#step += 1;
    this.#write(`\n${this.#step}. ${title}\n`);
  }

  line(text: string): void {
    const s = (this.elapsedMs() / 1000).toFixed(1).padStart(5);
    this.#write(`  [${s}s] ${text}\n`);
  }

  /** Free text without a time stamp (the summary). */
  raw(text: string): void {
    this.#write(text.endsWith('\n') ? text : `${text}\n`);
  }
}
