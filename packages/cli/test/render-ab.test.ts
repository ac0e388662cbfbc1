import { describe, expect, it } from 'vitest';
import type { AbArmSummary, AbComparison } from '@flotilla/protocol';
import { abText, intervalText } from '../src/commands/rollout/render-ab.ts';

const arm = (versions: string[], requests: number, share: number): AbArmSummary => ({
  versions,
  devices: 2,
  requests,
  errors: 1,
  escalations: 0,
  share,
  errorRate: { estimate: 0.01, low: 0.002, high: 0.05 },
  escalationRate: { estimate: 0, low: 0, high: 0.03 },
  meanLatencyMs: { estimate: 2.5, low: 2.25, high: 2.75 },
  meanConfidence: { estimate: 0.9, low: null, high: null },
});

describe('A/B comparison text', () => {
  it('prints one column per arm and one for candidate − control, rates in percent with their intervals', () => {
    const c: AbComparison = {
      model: 'digits',
      candidate: '1.1.0',
      level: 0.95,
      arms: { control: arm(['1.0.0'], 700, 0.7), candidate: arm(['1.1.0'], 300, 0.3) },
      difference: {
        errorRate: { estimate: 0.005, low: -0.01, high: 0.02 },
        escalationRate: { estimate: null, low: null, high: null },
        meanLatencyMs: { estimate: 0.5, low: 0.25, high: 0.75 },
        meanConfidence: { estimate: -0.01, low: -0.02, high: 0 },
      },
      latencyRatio: 1.2,
    };
    const lines = abText(c);
    expect(lines[0]).toBe('digits: candidate 1.1.0, 95% intervals, latency ratio 1.20');
    expect(lines[1]).toMatch(/^\s+control\s+candidate\s+candidate − control$/);
    expect(lines.find((l) => l.startsWith('error rate'))).toMatch(/1\.00% \[0\.20, 5\.00\]\s+1\.00% \[0\.20, 5\.00\]\s+\+0\.50% \[-1\.00, \+2\.00\]$/);
    expect(lines.find((l) => l.startsWith('share'))).toMatch(/70\.0%\s+30\.0%$/);
    expect(lines.find((l) => l.startsWith('mean confidence'))).toMatch(/0\.9000\s+0\.9000\s+-0\.0100 \[-0\.0200, 0\.0000\]$/);
  });

  it('says so when no device splits the model', () => {
    const empty = arm([], 0, 0);
    const none = { estimate: null, low: null, high: null };
    const c: AbComparison = { model: 'digits', candidate: null, level: 0.95, arms: { control: empty, candidate: empty }, difference: { errorRate: none, escalationRate: none, meanLatencyMs: none, meanConfidence: none }, latencyRatio: null };
    expect(abText(c)).toEqual(['digits: no device reports an A/B split']);
    expect(intervalText(none)).toBe('-');
  });
});
