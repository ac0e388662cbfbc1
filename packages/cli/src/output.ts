import type { Writable } from 'node:stream';

/**
 * Where a command's result goes. With `--json` a command prints exactly one JSON document on
 * stdout (the machine-readable result) and nothing else; without it, text for people. Notes
 * (progress, hints) go to stderr and never mix into the result.
 */
export class Output {
  readonly json: boolean;
  readonly #stdout: Writable;
  readonly #stderr: Writable;

  constructor(opts: { json: boolean; stdout: Writable; stderr: Writable }) {
    this.json = opts.json;
    this.#stdout = opts.stdout;
    this.#stderr = opts.stderr;
  }

  /** Prints the result: `value` as JSON with --json, otherwise the lines `human()` gives. */
  result(value: unknown, human: () => string | string[]): void {
    if (this.json) {
      this.#stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const text = human();
    const lines = Array.isArray(text) ? text : [text];
    if (lines.length > 0) this.#stdout.write(`${lines.join('\n')}\n`);
  }

  /** A side note for people (skipped with --json so scripts see a clean stderr too). */
  note(line: string): void {
    if (!this.json) this.#stderr.write(`${line}\n`);
  }
}

/** Left-aligned columns separated by two spaces; cells are already strings. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `key: value` lines with the keys padded to one width. */
export function fields(entries: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`);
}

/** Epoch milliseconds as an ISO instant (UTC); `-` for none. */
export function when(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]} (${n} B)`;
}
