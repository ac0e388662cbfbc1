import { describe, expect, it } from 'vitest';
import { funnelText } from '../src/commands/rollout/render-rollout.ts';

describe('stage funnel text', () => {
  it('shows where notified devices are in their install, in install order, and failures by reason code', () => {
    const text = funnelText({
      stage: 0,
      size: 6,
      required: 5,
      counts: { pending: 0, notified: 4, succeeded: 1, failed: 1, rejected: 0, timedOut: 0, reverted: 0, skipped: 0 },
      baking: 0,
      reached: { notified: 6, healthy: 1, succeeded: 1 },
      inFlight: { activated: 2, downloading: 1, waiting: 1 },
      failedBy: { FLT_OTA_SELFTEST_FAILED: 1 },
    });
    expect(text).toBe('pending 0, notified 4 [waiting 1, downloading 1, activated 2], baking 0, succeeded 1/5 needed, failed by reason: FLT_OTA_SELFTEST_FAILED 1');
  });

  it('reads funnels from servers that send no install steps', () => {
    const text = funnelText({ stage: 0, size: 1, required: 1, counts: { pending: 1 }, baking: 0, reached: { notified: 0, healthy: 0, succeeded: 0 } });
    expect(text).toBe('pending 1, notified 0, baking 0, succeeded 0/1 needed');
  });
});
