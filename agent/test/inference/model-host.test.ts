import { FlotillaError } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { ModelHost } from '../../src/inference/host/model-host.ts';
import { HealthWindow, percentile } from '../../src/inference/host/health-window.ts';
import type { LoadedModel, Tensor } from '../../src/inference/types.ts';

/** A loaded model double that records whether it was unloaded; the host never runs it. */
function fakeLoaded(version: string, model = 'm'): LoadedModel & { unloaded: number } {
  return {
    model,
    version,
    provider: 'cpu',
    inputs: [],
    outputs: [],
    unloaded: 0,
    async infer(): Promise<Tensor[]> {
      return [];
    },
    async unload() {
      this.unloaded++;
    },
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as FlotillaError).code;
  }
  return 'returned';
}

describe('ModelHost', () => {
  it('activates a staged candidate and keeps the replaced version as previous for rollback', async () => {
    const host = new ModelHost('m');
    const v1 = fakeLoaded('1');
    const v2 = fakeLoaded('2');
    await host.stage(v1);
    expect(host.activate()).toEqual({ model: 'm', from: null, to: '1' });
    await host.stage(v2);
    expect(host.select()).toBe(v1);
    expect(host.activate()).toEqual({ model: 'm', from: '1', to: '2' });
    expect(host.select()).toBe(v2);
    expect(host.previousModel).toBe(v1);
    expect(host.select('1')).toBe(v1);
    expect(host.rollback()).toEqual({ model: 'm', from: '2', to: '1' });
    expect(host.select()).toBe(v1);
    expect(v1.unloaded + v2.unloaded).toBe(0);
  });

  it('refuses to activate with nothing staged and to roll back with no previous version', async () => {
    const host = new ModelHost('m');
    expect(codeOf(() => host.activate())).toBe('FLT_INFER_SLOT_EMPTY');
    await host.stage(fakeLoaded('1'));
    expect(codeOf(() => host.rollback())).toBe('FLT_INFER_SLOT_EMPTY');
    host.activate();
    expect(codeOf(() => host.activate())).toBe('FLT_INFER_SLOT_EMPTY');
    expect(codeOf(() => host.rollback())).toBe('FLT_INFER_SLOT_EMPTY');
  });

  it('unloads the version a new candidate displaces from the inactive slot', async () => {
    const host = new ModelHost('m');
    const [v1, v2, v3] = [fakeLoaded('1'), fakeLoaded('2'), fakeLoaded('3')];
    await host.stage(v1);
    host.activate();
    await host.stage(v2);
    host.activate();
    await host.stage(v3);
    expect(v1.unloaded).toBe(1);
    expect(host.stagedModel).toBe(v3);
    expect(host.previousModel).toBeUndefined();
  });

  it('refuses to stage the active version again or another model', async () => {
    const host = new ModelHost('m');
    await host.stage(fakeLoaded('1'));
    host.activate();
    await expect(host.stage(fakeLoaded('1'))).rejects.toMatchObject({ code: 'FLT_CONFLICT' });
    await expect(host.stage(fakeLoaded('2', 'other'))).rejects.toBeInstanceOf(FlotillaError);
  });

  it('counts only requests the active version served in the health window, from the switch on', async () => {
    let now = 1000;
    const host = new ModelHost('m', { now: () => now });
    const [v1, v2] = [fakeLoaded('1'), fakeLoaded('2')];
    await host.stage(v1);
    host.activate();
    host.record(v1, 5);
    await host.stage(v2);
    now = 2000;
    host.activate();
    host.record(v1, 50); // finished on the old version after the switch
    host.record(v2, 1);
    host.record(v2, 3);
    host.record(v2, 2, 'FLT_INFER_RUN_FAILED');
    expect(host.health()).toEqual({
      version: '2',
      since: 2000,
      requests: 3,
      errors: 1,
      errorRate: 1 / 3,
      p50Ms: 1,
      p95Ms: 3,
      p99Ms: 3,
      errorsByCode: { FLT_INFER_RUN_FAILED: 1 },
    });
  });
});

describe('HealthWindow', () => {
  it('keeps exact counts and percentiles over its most recent samples only', () => {
    const w = new HealthWindow('1', 0, 4);
    for (const ms of [100, 100, 100, 100, 1, 2, 3, 4]) w.record(ms);
    expect(w.snapshot()).toMatchObject({ requests: 8, p50Ms: 2, p99Ms: 4 });
  });

  it('takes percentiles by nearest rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(sorted, 50), percentile(sorted, 99), percentile(sorted, 100), percentile([], 50)]).toEqual([50, 99, 100, null]);
  });
});
