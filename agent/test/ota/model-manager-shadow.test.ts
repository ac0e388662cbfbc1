import { beforeAll, describe, expect, it } from 'vitest';
import type { Golden, ModelCard } from '@flotilla/modelkit';
import type { DesiredState } from '@flotilla/protocol';
import type { SigningKeyPair } from '@flotilla/release';
import { builtModels, goldenInputs, harness, newKey, publish, trustKeys, type Harness } from './ota-fixtures.ts';
import { TestArtifactServer } from './test-artifact-server.ts';

let cards: Map<string, ModelCard>;
const card = (name: string): ModelCard => cards.get(name)!;
let generation = 0;
const desired = (models: Record<string, { version: string } & Record<string, unknown>>): DesiredState => ({ generation: ++generation, models });
const GATE = { share: 1, minSamples: 60, minAgreement: 0.9 };

beforeAll(async () => {
  cards = await builtModels();
}, 120_000);

async function setup(): Promise<{ server: TestArtifactServer; key: SigningKeyPair }> {
  const server = await TestArtifactServer.start();
  const key = newKey();
  trustKeys(server, key);
  return { server, key };
}

/** Sends the int8 golden batch until the shadow hold ends, checking every answer during the hold came from `active`. */
async function traffic(h: Harness, active: string): Promise<void> {
  const answeredBy = new Set<string>();
  while (h.manager.models().digits?.state === 'installed') {
    const version = (await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version;
    // An answer that returns after the gate decided may come from the candidate; only the hold's answers count
    // (the run stops in the same turn as the gate decides, before any switch).
    if (h.inference.shadowReport('digits') !== null) answeredBy.add(version);
    await new Promise((r) => setTimeout(r, 5));
  }
  await h.manager.idle();
  expect([...answeredBy]).toEqual([active]);
}

describe('ModelManager: shadow gate', () => {
  it('holds a candidate in shadow, reports the run, and activates it once it agrees often enough', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    const models = await h.manager.apply(desired({ digits: { version: '1.1.0', shadow: GATE } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'installed', waiting: 'shadow', target: '1.1.0', shadow: { candidate: '1.1.0' } });
    expect(h.inference.status()[0]?.staged?.version).toBe('1.1.0');
    await traffic(h, '1.0.0');
    expect(h.manager.models().digits).toMatchObject({ version: '1.1.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    const passed = h.events.find((e) => e.kind === 'ota.shadow-passed');
    expect(passed?.data).toMatchObject({ version: '1.1.0' });
    expect(passed?.data.samples as number).toBeGreaterThanOrEqual(GATE.minSamples);
    expect(passed?.data.agreement as number).toBeGreaterThanOrEqual(GATE.minAgreement);
    const held = h.reports.map((r) => r.models.digits as { waiting?: string; shadow?: unknown } | undefined).filter((m) => m?.waiting === 'shadow');
    expect(held.at(-1)?.shadow).toMatchObject({ candidate: '1.1.0', activeP50Ms: expect.any(Number), candidateP50Ms: expect.any(Number), meanAbsDiff: expect.any(Number) });
    expect(h.kinds('digits').slice(-5)).toEqual(['ota.installed', 'ota.shadow', 'ota.shadow-passed', 'ota.activated', 'ota.healthy']);
  });

  it('refuses a candidate that passes its own self-test but disagrees with the active version on live traffic', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    // Perturbed weights, same signature; shipped without the good build's golden data, so it loads and self-tests fine.
    publish(server, key, { ...card('mnist-edge-int8-bad-golden'), golden: undefined as unknown as Golden }, 'digits', '1.1.0', { counter: 2 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    await h.manager.apply(desired({ digits: { version: '1.1.0', shadow: GATE } }));
    await traffic(h, '1.0.0');
    const digits = h.manager.models().digits;
    expect(digits).toMatchObject({ version: '1.0.0', state: 'failed', error: 'FLT_OTA_SHADOW_DISAGREED', target: '1.1.0' });
    expect(digits?.shadow?.samples).toBeGreaterThanOrEqual(GATE.minSamples);
    expect(digits?.shadow?.agreement).toBeLessThan(GATE.minAgreement);
    expect(h.events.filter((e) => e.kind === 'ota.activated').map((e) => e.data.version)).toEqual(['1.0.0']);
    expect(h.inference.status()[0]).toMatchObject({ active: { version: '1.0.0' }, staged: null });
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, pending: null });
    expect(h.inference.shadowReport('digits')).toBeNull();
    // Remembered: the same desired entry does not install the refused build again.
    const again = await h.manager.apply(desired({ digits: { version: '1.1.0', shadow: GATE } }));
    expect(again.digits).toMatchObject({ version: '1.0.0', state: 'failed', error: 'FLT_OTA_SHADOW_DISAGREED' });
    expect(h.inference.status()[0]?.staged).toBeNull();
  });

  it('drops the held candidate when a newer desired entry replaces it before the gate decides', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    await h.manager.apply(desired({ digits: { version: '1.1.0', shadow: GATE } }));
    expect(h.inference.shadowReport('digits')).toMatchObject({ candidate: '1.1.0', samples: 0 });
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
    expect(h.inference.status()[0]).toMatchObject({ active: { version: '1.0.0' }, staged: null });
    expect(h.inference.shadowReport('digits')).toBeNull();
  });
});
