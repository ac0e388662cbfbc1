import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '@flotilla/modelkit';
import type { AbReport, DesiredState } from '@flotilla/protocol';
import type { SigningKeyPair } from '@flotilla/release';
import { builtModels, goldenInputs, harness, newKey, publish, trustKeys, type Harness } from './ota-fixtures.ts';
import { TestArtifactServer } from './test-artifact-server.ts';

let cards: Map<string, ModelCard>;
const card = (name: string): ModelCard => cards.get(name)!;
let generation = 0;
const desired = (models: Record<string, { version: string } & Record<string, unknown>>): DesiredState => ({ generation: ++generation, models });

beforeAll(async () => {
  cards = await builtModels();
}, 120_000);

async function serving10(): Promise<Harness> {
  const server = await TestArtifactServer.start();
  const key: SigningKeyPair = newKey();
  trustKeys(server, key);
  publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
  publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
  const h = await harness(server, { config: { abReportMs: 0 } });
  await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
  await h.manager.idle();
  return h;
}

async function send(h: Harness, n: number): Promise<string[]> {
  const versions: string[] = [];
  for (let i = 0; i < n; i++) versions.push((await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version);
  return versions;
}

const lastAb = (h: Harness): AbReport | undefined => h.reports.map((r) => (r.models.digits as { ab?: AbReport } | undefined)?.ab).filter((a) => a !== undefined).at(-1);

describe('ModelManager: A/B split', () => {
  it('serves a share from the staged candidate, reports both arms, and activates it when the entry drops the split', async () => {
    const h = await serving10();
    const models = await h.manager.apply(desired({ digits: { version: '1.1.0', ab: { share: 0.5 } } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'installed', waiting: 'ab', target: '1.1.0' });
    expect(h.inference.status()[0]).toMatchObject({ active: { version: '1.0.0' }, staged: { version: '1.1.0' } });
    const served = await send(h, 40);
    expect(new Set(served)).toEqual(new Set(['1.0.0', '1.1.0']));
    for (let i = 0; i < 100 && (lastAb(h)?.control.requests ?? 0) + (lastAb(h)?.candidate.requests ?? 0) < 40; i++) await new Promise((r) => setTimeout(r, 20));
    const ab = lastAb(h)!;
    expect(ab).toMatchObject({ share: 0.5, control: { version: '1.0.0' }, candidate: { version: '1.1.0' } });
    expect(ab.control.requests + ab.candidate.requests).toBe(40);
    expect(ab.candidate.requests).toBe(served.filter((v) => v === '1.1.0').length);

    const after = await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    await h.manager.idle();
    expect(after.digits?.ab).toBeUndefined();
    expect(h.manager.models().digits).toMatchObject({ version: '1.1.0', state: 'healthy' });
    expect(h.inference.abReport('digits')).toBeNull();
    expect(await send(h, 3)).toEqual(['1.1.0', '1.1.0', '1.1.0']);
    expect(h.kinds('digits')).toContain('ota.ab');
  });

  it('starts the split again with fresh counters when its share changes, and drops the candidate when the entry goes back', async () => {
    const h = await serving10();
    await h.manager.apply(desired({ digits: { version: '1.1.0', ab: { share: 0.5 } } }));
    await send(h, 10);
    await h.manager.apply(desired({ digits: { version: '1.1.0', ab: { share: 1 } } }));
    expect(h.inference.abReport('digits')).toMatchObject({ share: 1, control: { requests: 0 }, candidate: { requests: 0 } });
    expect(await send(h, 3)).toEqual(['1.1.0', '1.1.0', '1.1.0']);
    const back = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    expect(back.digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
    expect(h.inference.status()[0]).toMatchObject({ active: { version: '1.0.0' }, staged: null });
    expect(h.inference.abReport('digits')).toBeNull();
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, pending: null });
  });
});
