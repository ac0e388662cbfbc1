import type { ManagedProcess } from './managed-process.ts';

/** Shutdown order: the highest layer stops first. */
export const LAYER = { server: 0, pool: 1, agent: 2 } as const;

/**
 * Owns every child process of the demo. `close()` stops them layer by layer, highest layer first
 * (agents, then the pool, then the server, so agents can say goodbye to a live server), each
 * layer in parallel; it is safe to call twice. A synchronous kill on process exit is the last
 * line of defence against orphans when the demo dies some other way.
 */
export class ProcessGroup {
  readonly #members: Array<{ process: ManagedProcess; layer: number }> = [];
  #closing: Promise<void> | undefined;
  readonly #onExit = (): void => {
    for (const m of this.#members) m.process.kill();
  };

  constructor() {
    process.on('exit', this.#onExit);
  }

  add(process: ManagedProcess, layer: number): ManagedProcess {
    if (this.#closing) {
      process.kill();
      throw new Error(`${process.name} started while the demo was shutting down`);
    }
    this.#members.push({ process, layer });
    return process;
  }

  /** Every member, in the order `close()` stops them. */
  get processes(): ManagedProcess[] {
    return [...this.#members].sort((a, b) => b.layer - a.layer).map((m) => m.process);
  }

  close(graceMs?: number): Promise<void> {
    this.#closing ??= (async () => {
      const layers = [...new Set(this.#members.map((m) => m.layer))].sort((a, b) => b - a);
      for (const layer of layers) {
        await Promise.allSettled(this.#members.filter((m) => m.layer === layer).map((m) => m.process.stop(graceMs)));
      }
      process.off('exit', this.#onExit);
    })();
    return this.#closing;
  }
}
