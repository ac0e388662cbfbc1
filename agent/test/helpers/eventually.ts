/** Polls `check` (every few ms) until it returns something truthy; the test timeout bounds it. */
export async function eventually<T>(check: () => T | undefined | null | false): Promise<T> {
  for (;;) {
    const v = check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}
