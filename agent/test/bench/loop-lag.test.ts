import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openSchedstat, startLagSampler, summarizeLag } from '../../bench/inprocess/loop-lag.ts';

const hasSchedstat = existsSync('/proc/thread-self/schedstat');

describe('event-loop lag attribution (bench:agent part b)', () => {
  it('counts as the loop’s own lag only the lateness its time on a CPU can account for', () => {
    const summary = summarizeLag([
      { lateMs: 0.1, onCpuMs: 0.05, runQueueMs: 0 },
      // Held by work on the loop: on a CPU for nearly all of the lateness.
      { lateMs: 9, onCpuMs: 8.5, runQueueMs: 0.2 },
      // Late, but the thread was waiting for a CPU: not the loop's doing.
      { lateMs: 12, onCpuMs: 0.3, runQueueMs: 11.5 },
    ]);
    expect(summary).toMatchObject({ ticks: 3, maxLagMs: 12, maxOwnLagMs: 8.5, maxRunQueueMs: 11.5 });
  });

  it('reports the plain lag alone when a tick has no scheduler figures', () => {
    const summary = summarizeLag([{ lateMs: 3 }, { lateMs: 1, onCpuMs: 1, runQueueMs: 0 }]);
    expect(summary.maxLagMs).toBe(3);
    expect(summary.maxOwnLagMs).toBeUndefined();
    expect(summary.maxRunQueueMs).toBeUndefined();
  });

  // Linux only: the figures come from /proc/thread-self/schedstat.
  it.runIf(hasSchedstat)('sees a loop held by its own work (30 ms of CPU in one callback)', async () => {
    const sampler = startLagSampler();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Spin until this thread has been on a CPU for 30 ms more, however the machine schedules it:
    // the tick after this callback is then at least 29 ms late with at least 30 ms on a CPU.
    const sched = openSchedstat();
    if (!sched) throw new Error('schedstat vanished');
    const [start] = sched.read();
    while (sched.read()[0] - start < 30e6);
    sched.close();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const summary = sampler.stop();
    expect(summary.maxOwnLagMs).toBeGreaterThanOrEqual(29);
    expect(summary.maxLagMs).toBeGreaterThanOrEqual(summary.maxOwnLagMs as number);
  });
});
