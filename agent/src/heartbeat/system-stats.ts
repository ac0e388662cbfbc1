import os from 'node:os';
import { statfsSync } from 'node:fs';

/** Live figures for a heartbeat; injected so tests can pin them. */
export interface SystemStats {
  loadAvg1(): number;
  memFreeBytes(): number;
  diskFreeBytes(path: string): number | undefined;
}

export const systemStats: SystemStats = {
  loadAvg1: () => os.loadavg()[0] ?? 0,
  memFreeBytes: () => os.freemem(),
  diskFreeBytes: (path) => {
    try {
      const s = statfsSync(path);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  },
};
