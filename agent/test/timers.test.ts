import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_DELAY_MS, sleep, systemTimers } from '../src/runtime/timers.ts';

const DAY = 86_400_000;

describe('systemTimers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does not fire a wait longer than one Node timer holds at once (Node would fire it after 1 ms)', async () => {
    const fired = vi.fn();
    const handle = systemTimers.setTimeout(fired, 30 * DAY);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fired).not.toHaveBeenCalled();
    systemTimers.clearTimeout(handle);
  });

  it('fires a 40-day wait at its deadline, re-armed in steps', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 24) });
    const fired = vi.fn();
    systemTimers.setTimeout(fired, 40 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(40 * DAY - MAX_TIMER_DELAY_MS - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('clears a long wait between its steps', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 24) });
    const fired = vi.fn();
    const handle = systemTimers.setTimeout(fired, 60 * DAY);
    vi.advanceTimersByTime(30 * DAY);
    systemTimers.clearTimeout(handle);
    vi.advanceTimersByTime(60 * DAY);
    expect(fired).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets sleep() over a long wait end early on abort', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 24) });
    const abort = new AbortController();
    const slept = sleep(systemTimers, 50 * DAY, abort.signal);
    vi.advanceTimersByTime(DAY);
    abort.abort();
    await slept;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets an unref’d long wait stop holding the process open', () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const handle = systemTimers.setTimeout(() => undefined, 30 * DAY);
    expect(timeouts()).toBe(before + 1);
    expect(handle.unref?.()).toBe(handle);
    expect(timeouts()).toBe(before);
    systemTimers.clearTimeout(handle);
  });
});
