import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';

/**
 * Everything the inventory reads from the machine, behind one seam: tests hand in a fake
 * (for example, a fake Jetson with a GPU) and the collector logic runs unchanged.
 */
export interface SystemProbes {
  arch(): string;
  platform(): string;
  release(): string;
  cpus(): { model: string }[];
  totalMemBytes(): number;
  /** File contents, or undefined when it does not exist or cannot be read. */
  readText(path: string): Promise<string | undefined>;
  statfs(path: string): Promise<{ totalBytes: number; freeBytes: number } | undefined>;
  /** stdout of a command, or undefined when it is missing, fails or runs past the timeout. */
  run(command: string, args: readonly string[], timeoutMs: number): Promise<string | undefined>;
}

export const systemProbes: SystemProbes = {
  arch: () => os.arch(),
  platform: () => os.platform(),
  release: () => os.release(),
  cpus: () => os.cpus(),
  totalMemBytes: () => os.totalmem(),
  readText: async (path) => {
    try {
      return await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  statfs: async (path) => {
    try {
      const s = await statfs(path);
      return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
    } catch {
      return undefined;
    }
  },
  run: (command, args, timeoutMs) =>
    new Promise((resolve) => {
      execFile(command, [...args], { timeout: timeoutMs, maxBuffer: 256 * 1024, windowsHide: true }, (err, stdout) => {
        resolve(err ? undefined : stdout);
      });
    }),
};
