/** The result of Atomics.waitAsync: settled at once (`async: false`) or a promise to await. */
export interface WaitAsyncResult {
  async: boolean;
  value: Promise<unknown> | string;
}

// Atomics.waitAsync is in Node 20 (V8 11) but not in the ES2023 lib this repository compiles against.
export const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, timeout?: number): WaitAsyncResult }).waitAsync;
