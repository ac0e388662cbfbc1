import { afterEach, describe, expect, it } from 'vitest';
import { MaintenanceWindowSchedule } from '../../src/rollouts/index.ts';
import { currentRatePerMin } from '../../src/rollouts/rate-ramp.ts';
import { RolloutHarness, OPERATOR } from './harness.ts';

let h: RolloutHarness | undefined;
afterEach(() => h?.close());

const base = { target: { group: 'fleet' }, model: 'digits', version: '2.0.0' };

describe('rate limit with an exponential ramp', () => {
  it('notifies at most the current rate per minute, and ramps up to the maximum as devices are notified', () => {
    h = new RolloutHarness();
    h.addDevices(60);
    h.engine.create(OPERATOR, { ...base, id: 'ramp', stages: [{ percent: 100, successThreshold: 0 }], perDeviceTimeoutSec: 86_400, rate: { baseRatePerMin: 2, incrementFactor: 2, incrementAfter: { notified: 4 }, maxRatePerMin: 8 } });
    const perMinute: number[] = [];
    const sentAt: number[] = [];
    for (let minute = 0; minute < 8; minute++) {
      let n = 0;
      for (let s = 0; s < 60; s++) {
        const sent = h.engine.tick().notified;
        for (let i = 0; i < sent; i++) sentAt.push(h.t);
        n += sent;
        h.advance(1000);
      }
      perMinute.push(n);
    }
    expect(perMinute[0]).toBe(2);
    expect(perMinute.at(-1)).toBe(8);
    for (let i = 1; i < perMinute.length; i++) expect(perMinute[i]).toBeGreaterThanOrEqual(perMinute[i - 1]!);
    // In any sliding minute, never more than the maximum rate.
    for (const t of sentAt) expect(sentAt.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(8);
  });

  it('computes the ramp from notified or succeeded steps and caps it', () => {
    const rate = { baseRatePerMin: 10, incrementFactor: 1.5, incrementAfter: { notified: 100, succeeded: 20 }, maxRatePerMin: 40 };
    expect(currentRatePerMin(rate, { notified: 0, succeeded: 0 })).toBe(10);
    expect(currentRatePerMin(rate, { notified: 100, succeeded: 0 })).toBe(15);
    expect(currentRatePerMin(rate, { notified: 100, succeeded: 40 })).toBe(22);
    expect(currentRatePerMin(rate, { notified: 10_000, succeeded: 0 })).toBe(40);
  });
});

describe('maintenance windows', () => {
  const paris = { cron: '0 2 * * *', durationSec: 3600, timeZone: 'Europe/Paris' };

  it('opens at 02:00 Paris time in winter (UTC+1) and in summer (UTC+2)', () => {
    const w = new MaintenanceWindowSchedule(paris);
    expect(w.nextOpenAfter(Date.UTC(2025, 0, 15, 12))).toBe(Date.UTC(2025, 0, 16, 1));
    expect(w.nextOpenAfter(Date.UTC(2025, 6, 15, 12))).toBe(Date.UTC(2025, 6, 16, 0));
    expect(w.openAt(Date.UTC(2025, 0, 16, 1, 59))).toEqual({ start: Date.UTC(2025, 0, 16, 1), end: Date.UTC(2025, 0, 16, 2) });
    expect(w.openAt(Date.UTC(2025, 0, 16, 2))).toBeNull();
    expect(w.openAt(Date.UTC(2025, 0, 16, 0, 59))).toBeNull();
  });

  it('skips a local time that the spring change removes and opens once on a time the autumn change repeats', () => {
    const w = new MaintenanceWindowSchedule({ cron: '30 2 * * *', durationSec: 600, timeZone: 'Europe/Paris' });
    // 2025-03-30: 02:00 → 03:00 in Paris, so 02:30 does not exist that day.
    expect(w.nextOpenAfter(Date.UTC(2025, 2, 29, 12))).toBe(Date.UTC(2025, 2, 31, 0, 30));
    // 2025-10-26: 03:00 → 02:00, so 02:30 happens twice; the first (UTC+2) counts.
    expect(w.nextOpenAfter(Date.UTC(2025, 9, 25, 12))).toBe(Date.UTC(2025, 9, 26, 0, 30));
    expect(w.nextOpenAfter(Date.UTC(2025, 9, 26, 0, 30))).toBe(Date.UTC(2025, 9, 27, 1, 30));
  });

  it('honours day-of-week fields and refuses windows that cannot open', () => {
    const sundays = new MaintenanceWindowSchedule({ cron: '0 3 * * sun', durationSec: 3600, timeZone: 'UTC' });
    expect(sundays.nextOpenAfter(Date.UTC(2025, 0, 15, 12))).toBe(Date.UTC(2025, 0, 19, 3)); // Wed → Sun
    expect(() => MaintenanceWindowSchedule.check({ cron: '0 0 30 2 *', durationSec: 3600 }, Date.UTC(2025, 0, 1))).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_WINDOW_INVALID' }));
    expect(() => new MaintenanceWindowSchedule({ cron: '0 2 * * *', durationSec: 3600, timeZone: 'Mars/Olympus' })).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_WINDOW_INVALID' }));
    expect(() => new MaintenanceWindowSchedule({ cron: 'every night', durationSec: 3600 })).toThrow(expect.objectContaining({ code: 'FLT_ROLLOUT_WINDOW_INVALID' }));
  });

  it('tells devices to download now and activate only inside the next window, and starts the timeout there', () => {
    h = new RolloutHarness();
    const [d] = h.addDevices(1);
    h.engine.create(OPERATOR, { ...base, id: 'window', stages: [{ percent: 100 }], perDeviceTimeoutSec: 600, maintenanceWindow: paris });
    h.engine.tick();
    expect(h.desired(d!)!.models.digits).toEqual({
      version: '2.0.0',
      rollout: 'window',
      activateAfter: Date.UTC(2025, 0, 16, 1),
      activateBefore: Date.UTC(2025, 0, 16, 2),
      window: paris,
    });
    // 13 h until the window opens plus 10 min: no timeout before that.
    h.advance(13 * 3_600_000 + 599_000);
    h.engine.tick();
    expect(h.inState('window', 'notified')).toEqual([d]);
    h.advance(1000);
    h.engine.tick();
    expect(h.inState('window', 'timedOut')).toEqual([d]);
  });

  it('estimates a dry run from the rate, the bake times and the window', () => {
    h = new RolloutHarness();
    h.addDevices(100);
    const dry = h.engine.dryRun({ ...base, stages: [{ count: 10, bakeTimeSec: 600 }, { percent: 100 }], rate: { baseRatePerMin: 60 } });
    // 10 at 1/s, bake 10 min, then 90 more at 1/s.
    expect(dry.estimate.durationSec).toBe(9 + 600 + 89);
    const windowed = h.engine.dryRun({ ...base, stages: [{ percent: 100 }], maintenanceWindow: paris });
    expect(windowed.estimate.completesAt).toBe(Date.UTC(2025, 0, 16, 1));
  });
});
