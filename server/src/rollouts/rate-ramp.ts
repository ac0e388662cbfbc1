import type { NormalizedSpec } from './spec.ts';

/**
 * Notification rate with an exponential ramp: `base × factor^k` per minute, capped at the maximum,
 * where k counts completed steps of `incrementAfter` (notified or succeeded devices, whichever has
 * made more steps).
 */
export function currentRatePerMin(rate: NonNullable<NormalizedSpec['rate']>, progress: { notified: number; succeeded: number }): number {
  const { notified, succeeded } = rate.incrementAfter;
  const steps = Math.max(notified ? Math.floor(progress.notified / notified) : 0, succeeded ? Math.floor(progress.succeeded / succeeded) : 0);
  // Cap the exponent: beyond ~60 steps any factor > 1 has passed every allowed maximum.
  const value = rate.baseRatePerMin * Math.pow(rate.incrementFactor, Math.min(steps, 60));
  return Math.max(1, Math.min(rate.maxRatePerMin, Math.floor(value)));
}

/**
 * How many more devices may be notified now. Two sliding windows bound it, both counted from the
 * notification times stored per device (so a restart cannot forget them): at most the rate in any
 * 60 seconds, and at most a sixtieth of it (rounded up) in any one second, which spreads a minute's
 * budget instead of sending it in one burst.
 */
export function notificationBudget(ratePerMin: number, sentLastMinute: number, sentLastSecond: number): number {
  const perSecond = Math.ceil(ratePerMin / 60);
  return Math.max(0, Math.min(ratePerMin - sentLastMinute, perSecond - sentLastSecond));
}
