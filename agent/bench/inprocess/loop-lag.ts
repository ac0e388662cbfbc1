/**
 * Event-loop lag, and how much of it the loop caused itself.
 *
 * A chain of 1 ms timers on the thread being measured. At every tick the thread reads its own
 * scheduler statistics (Linux `/proc/thread-self/schedstat`: nanoseconds spent on a CPU and
 * nanoseconds spent runnable but waiting for one). A tick that comes L ms late, after an interval
 * in which the thread was on a CPU for C ms, was held up by work on the loop itself for at most
 * min(L, C): for the rest of the lateness the thread was off the CPU — waiting on a run queue
 * (reported), or stopped by the hypervisor, which the guest cannot see. On a shared virtual machine
 * the second kind alone reaches several milliseconds with the loop idle, so the maximum lag by
 * itself cannot say whether the code under test blocks the loop; the own-lag figure can.
 *
 * Where schedstat is missing (not Linux) only the plain lag is reported.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { quantile, round } from '../stats.ts';

export interface LagTick {
  /** How late the tick fired (ms past the 1 ms it asked for). */
  lateMs: number;
  /** The thread's time on a CPU during the interval (ms); undefined without schedstat. */
  onCpuMs?: number;
  /** The thread's time runnable but not running during the interval (ms). */
  runQueueMs?: number;
}

export interface LagSummary {
  ticks: number;
  maxLagMs: number;
  p99LagMs: number;
  /** max over ticks of min(late, on-CPU): the longest the loop's own work can have held a tick. */
  maxOwnLagMs?: number;
  p99OwnLagMs?: number;
  /** Longest wait for a CPU within one interval. */
  maxRunQueueMs?: number;
}

const maxOf = (xs: readonly number[]): number => xs.reduce((m, x) => (x > m ? x : m), 0);

export function summarizeLag(ticks: readonly LagTick[]): LagSummary {
  const late = ticks.map((t) => t.lateMs);
  const summary: LagSummary = { ticks: ticks.length, maxLagMs: round(maxOf(late), 3), p99LagMs: round(quantile(late, 0.99), 3) };
  if (ticks.length > 0 && ticks.every((t) => t.onCpuMs !== undefined && t.runQueueMs !== undefined)) {
    const own = ticks.map((t) => Math.min(t.lateMs, t.onCpuMs as number));
    summary.maxOwnLagMs = round(maxOf(own), 3);
    summary.p99OwnLagMs = round(quantile(own, 0.99), 3);
    summary.maxRunQueueMs = round(maxOf(ticks.map((t) => t.runQueueMs as number)), 3);
  }
  return summary;
}

export interface SchedReader {
  /** [ns on a CPU, ns waiting for one] of the calling thread so far. */
  read(): [number, number];
  close(): void;
}

/** Opens the calling thread's schedstat, or undefined where the kernel has none. */
export function openSchedstat(): SchedReader | undefined {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(128);
  return {
    read() {
      const n = readSync(fd, buf, 0, buf.length, 0);
      const [cpu, wait] = buf.toString('latin1', 0, n).split(' ');
      return [Number(cpu), Number(wait)];
    },
    close: () => closeSync(fd),
  };
}

/** Starts ticking on this thread's event loop; `stop()` ends it and summarizes. */
export function startLagSampler(): { stop(): LagSummary } {
  const sched = openSchedstat();
  const ticks: LagTick[] = [];
  let [cpu, wait] = sched?.read() ?? [0, 0];
  let at = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const now = performance.now();
    const t: LagTick = { lateMs: Math.max(0, now - at - 1) };
    if (sched) {
      const [c, w] = sched.read();
      t.onCpuMs = (c - cpu) / 1e6;
      t.runQueueMs = (w - wait) / 1e6;
      cpu = c;
      wait = w;
    }
    ticks.push(t);
    at = now;
    timer = setTimeout(tick, 1);
  };
  timer = setTimeout(tick, 1);
  return {
    stop() {
      clearTimeout(timer);
      sched?.close();
      return summarizeLag(ticks);
    },
  };
}
