import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corruptModelBytes, type ModelCard } from '@flotilla/modelkit';
import type { DesiredState } from '@flotilla/protocol';
import type { SigningKeyPair } from '@flotilla/release';
import { FakeTimers } from '../helpers/fake-timers.ts';
import { FAST, builtModels, goldenInputs, harness, modelBytes, newKey, publish, sha256, trustKeys } from './ota-fixtures.ts';
import { TestArtifactServer } from './test-artifact-server.ts';

let cards: Map<string, ModelCard>;
const card = (name: string): ModelCard => cards.get(name)!;
let generation = 0;
const desired = (models: Record<string, { version: string } & Record<string, unknown>>): DesiredState => ({ generation: ++generation, models });

beforeAll(async () => {
  cards = await builtModels();
}, 120_000);

async function setup(): Promise<{ server: TestArtifactServer; key: SigningKeyPair }> {
  const server = await TestArtifactServer.start();
  const key = newKey();
  trustKeys(server, key);
  return { server, key };
}

describe('ModelManager: install funnel', () => {
  it('installs a first version through the whole funnel and serves it', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const h = await harness(server);
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    expect(models.digits).toMatchObject({ version: '1.0.0', provider: 'cpu' });
    expect(h.manager.models().digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
    expect(h.kinds('digits')).toEqual(['ota.notified', 'ota.downloading', 'ota.downloading', 'ota.verified', 'ota.installed', 'ota.activated', 'ota.healthy']);
    const states = h.reports.map((r) => r.models.digits?.state);
    expect(states).toEqual(expect.arrayContaining(['pending', 'downloading', 'verified', 'installed', 'activated', 'healthy']));
    const res = await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')));
    expect(res.version).toBe('1.0.0');
    expect(existsSync(join(h.dataDir, 'trusted-keys.json'))).toBe(true);
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, previous: null, pending: null, activeHealthy: true });
  });

  it('applies the same desired state again without downloading or switching anything', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    const before = h.events.length;
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
    expect(h.events.length).toBe(before);
    expect(server.artifactRequests).toHaveLength(1);
  });

  it('reports a desired model the server does not know as failed with FLT_OTA_UNKNOWN_MODEL', async () => {
    const { server } = await setup();
    const h = await harness(server);
    const models = await h.manager.apply(desired({ nosuch: { version: '1.0.0' } }));
    expect(models.nosuch).toMatchObject({ version: null, state: 'failed', error: 'FLT_OTA_UNKNOWN_MODEL' });
    expect(h.events.at(-1)).toMatchObject({ kind: 'ota.failed', data: { code: 'FLT_OTA_UNKNOWN_MODEL' } });
  });
});

describe('ModelManager: retries', () => {
  it('answers a new generation of the same entry with pending while a passing failure waits for its retry, so the failure is reported once', async () => {
    const { server } = await setup();
    const h = await harness(server);
    const first = await h.manager.apply(desired({ nosuch: { version: '1.0.0' } }));
    expect(first.nosuch).toMatchObject({ state: 'failed', error: 'FLT_OTA_UNKNOWN_MODEL' });
    const failures = h.events.filter((e) => e.kind === 'ota.failed').length;
    // A rollout retry: the server writes the same entry under a new generation at once.
    const again = await h.manager.apply(desired({ nosuch: { version: '1.0.0' } }));
    expect(again.nosuch).toMatchObject({ state: 'pending' });
    expect(h.events.filter((e) => e.kind === 'ota.failed')).toHaveLength(failures);
  });
});

describe('ModelManager: downloads', () => {
  it('resumes a cut download with Range and re-sends only the missing bytes', async () => {
    const { server, key } = await setup();
    const m = publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const length = m.variants[0]!.file.length;
    server.faults.push({ cutAfter: 10_000 });
    const h = await harness(server);
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(server.artifactRequests.map((r) => r.range)).toEqual([undefined, `bytes=10000-${length - 1}`]);
    expect(server.bytesSent).toBe(length);
  });

  it('fetches through the transport its config names: a chunked answer costs the direct transport one request more, undici none', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    server.faults.push({ chunked: true }, { chunked: true });
    const direct = await harness(server);
    expect((await direct.manager.apply(desired({ digits: { version: '1.0.0' } }))).digits).toMatchObject({ version: '1.0.0' });
    expect(server.artifactRequests).toHaveLength(2);

    server.artifactRequests.length = 0;
    server.faults.push({ chunked: true }, { chunked: true });
    const viaUndici = await harness(server, { config: { download: { ...FAST.download!, transport: 'undici' } } });
    expect((await viaUndici.manager.apply(desired({ digits: { version: '1.0.0' } }))).digits).toMatchObject({ version: '1.0.0' });
    expect(server.artifactRequests).toHaveLength(1);
  });

  it('resumes after a restart from the partial file kept in the cache, hashing its prefix first', async () => {
    const { server, key } = await setup();
    const m = publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const bytes = modelBytes('mnist-edge-int8');
    const h = await harness(server);
    writeFileSync(h.manager.cache.partialPathFor(m.variants[0]!.file.sha256), bytes.subarray(0, 20_000));
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(server.artifactRequests[0]!.range).toBe(`bytes=20000-${bytes.length - 1}`);
    expect(server.bytesSent).toBe(bytes.length - 20_000);
    expect(h.events.find((e) => e.kind === 'ota.verified')!.data).toMatchObject({ resumedFrom: 20_000, bytesFetched: bytes.length - 20_000 });
  });

  it('aborts a download that runs past the signed length with FLT_OTA_LENGTH_MISMATCH and installs nothing', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    server.faults.push({ extraBytes: 4096 });
    const h = await harness(server);
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: null, state: 'failed', error: 'FLT_OTA_LENGTH_MISMATCH' });
    expect(readdirSync(h.manager.cache.verifiedDir)).toEqual([]);
    expect(readdirSync(h.manager.cache.partialDir)).toEqual([]);
  });

  it('retries a stalled download after its stall deadline and completes it', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    server.faults.push({ stallAfter: 5_000 });
    const h = await harness(server, { config: { download: { stallMs: 200, maxAttempts: 3, backoffMs: 10, maxBackoffMs: 20, progressIntervalMs: 0 } } });
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(server.artifactRequests).toHaveLength(2);
    expect(server.artifactRequests[1]!.range).toMatch(/^bytes=5000-/);
  });

  it('gives up with FLT_OTA_DOWNLOAD_STALLED when every attempt stalls', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    server.faults.push({ stallAfter: 0 }, { stallAfter: 0 });
    const h = await harness(server, { config: { download: { stallMs: 100, maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20, progressIntervalMs: 0 } } });
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: null, state: 'failed', error: 'FLT_OTA_DOWNLOAD_STALLED' });
  });

  it('refuses bytes that do not hash to the signed sha256 and installs nothing', async () => {
    const { server, key } = await setup();
    const bytes = modelBytes('mnist-edge-int8');
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1, servedBytes: Buffer.from(corruptModelBytes(bytes, 'garble')) });
    const h = await harness(server);
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: null, state: 'failed', error: 'FLT_OTA_HASH_MISMATCH' });
    expect(readdirSync(h.manager.cache.verifiedDir)).toEqual([]);
    expect(h.manager.store.slots('digits').active).toBeNull();
    expect(h.kinds()).not.toContain('ota.installed');
  });

  it('refuses before downloading when the disk cannot hold the new file (FLT_OTA_DISK_FULL)', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const h = await harness(server, { freeBytes: async () => 1000 });
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ state: 'failed', error: 'FLT_OTA_DISK_FULL' });
    expect(server.artifactRequests).toHaveLength(0);
  });
});

describe('ModelManager: trust and preflight', () => {
  it('refuses a manifest for other hardware with FLT_OTA_INCOMPATIBLE before downloading', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1, constraints: { arch: ['riscv64'] } });
    const h = await harness(server);
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    expect(models.digits).toMatchObject({ version: null, state: 'failed', error: 'FLT_OTA_INCOMPATIBLE' });
    expect(server.artifactRequests).toHaveLength(0);
  });

  it('refuses a tampered manifest (FLT_RELEASE_BAD_SIGNATURE) and one signed by an unknown key', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', {
      counter: 1,
      mutate: (r) => {
        r.signed.releaseCounter = 99;
      },
    });
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.1', { counter: 2, key: newKey() });
    const h = await harness(server);
    expect((await h.manager.apply(desired({ digits: { version: '1.0.0' } }))).digits).toMatchObject({ state: 'failed', error: 'FLT_RELEASE_BAD_SIGNATURE' });
    expect((await h.manager.apply(desired({ digits: { version: '1.0.1' } }))).digits).toMatchObject({ state: 'failed', error: 'FLT_RELEASE_UNKNOWN_KEY' });
    expect(server.artifactRequests).toHaveLength(0);
  });

  it('refuses a release whose counter is lower than one already accepted (FLT_RELEASE_ROLLBACK)', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '2.0.0', { counter: 5 });
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.5.0', { counter: 3 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '2.0.0' } }));
    const models = await h.manager.apply(desired({ digits: { version: '1.5.0' } }));
    expect(models.digits).toMatchObject({ version: '2.0.0', state: 'failed', error: 'FLT_RELEASE_ROLLBACK' });
    expect(server.artifactRequests).toHaveLength(1);
  });

  it('pins the keys at first use and later accepts a key only through a rotation signed by a pinned key', async () => {
    const { server, key } = await setup();
    const { createRotation } = await import('@flotilla/release');
    const h = await harness(server);
    await h.manager.ensureTrust();
    const next = newKey();
    // The server now offers a different key set: a pinned device ignores it.
    server.keys = [{ keyId: next.keyId, publicKey: (await import('@flotilla/release')).exportPublicKey(next.publicKey) }];
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1, key: next });
    expect((await h.manager.apply(desired({ digits: { version: '1.0.0' } }))).digits).toMatchObject({ error: 'FLT_RELEASE_UNKNOWN_KEY' });
    server.rotations.push({ seq: 1, appliedAt: Date.now(), rotation: createRotation({ issuedAt: Date.now(), add: [{ publicKey: next.publicKey }], retire: [key.keyId] }, key.privateKey) });
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.1', { counter: 2, key: next });
    expect((await h.manager.apply(desired({ digits: { version: '1.0.1' } }))).digits).toMatchObject({ version: '1.0.1', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(h.manager.trust.rotationSeq).toBe(1);
  });
});

describe('ModelManager: slots, rollback and recovery', () => {
  async function installed(): Promise<{ server: TestArtifactServer; key: SigningKeyPair; h: Awaited<ReturnType<typeof harness>> }> {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const h = await harness(server);
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    return { server, key, h };
  }

  it('upgrades, keeps the previous slot, and reverts to it without downloading again', async () => {
    const { server, key, h } = await installed();
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    expect((await h.manager.apply(desired({ digits: { version: '1.1.0' } }))).digits).toMatchObject({ version: '1.1.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.1.0' }, previous: { version: '1.0.0' } });
    const requests = server.artifactRequests.length;
    await h.manager.idle();
    expect((await h.manager.apply(desired({ digits: { version: '1.0.0' } }))).digits).toMatchObject({ version: '1.0.0', state: expect.stringMatching(/^(activated|healthy)$/) });
    expect(server.artifactRequests.length).toBe(requests);
    expect((await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
  });

  it.each([
    ['fails its golden self-test', 'mnist-edge-int8-bad-golden', 'FLT_OTA_SELFTEST_FAILED'],
    ['fails to load', 'mnist-edge-int8-unloadable', 'FLT_OTA_LOAD_FAILED'],
  ])('keeps the current version serving when the new build %s', async (_what, build, code) => {
    const { server, key, h } = await installed();
    publish(server, key, card(build), 'digits', '1.1.0', { counter: 2 });
    const models = await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'failed', error: code, target: '1.1.0' });
    expect((await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, pending: null });
    // Remembered: the same build is not tried again for a later generation.
    const again = await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    expect(again.digits).toMatchObject({ version: '1.0.0', state: 'failed', error: code });
    expect(h.kinds().filter((k) => k === 'ota.notified')).toHaveLength(2);
  });

  it('refuses a corrupt build that was signed as is, and the current version keeps serving', async () => {
    const { server, key, h } = await installed();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.1.0', { counter: 2, bytes: Buffer.from(corruptModelBytes(modelBytes('mnist-edge-int8'))) });
    const models = await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    expect(models.digits).toMatchObject({ version: '1.0.0', state: 'failed', error: 'FLT_OTA_LOAD_FAILED' });
    expect((await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
  });

  it('rolls back on its own when the new version fails its health window', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    const h = await harness(server, {
      config: { health: { windowMs: 0, minRequests: 10, maxErrorRate: 0.05, maxP99Ms: null, maxWaitMs: 60_000, pollMs: 10 } },
      wrapInference: (inf) => ({
        stage: (s, o) => inf.stage(s, o),
        activate: (m) => inf.activate(m),
        rollback: (m) => inf.rollback(m),
        load: (s, o) => inf.load(s, o),
        unload: (m, v) => inf.unload(m, v),
        status: () => inf.status(),
        startShadow: (m, o) => inf.startShadow(m, o),
        stopShadow: (m) => inf.stopShadow(m),
        shadowReport: (m) => inf.shadowReport(m),
        // 1.1.0 answers with errors; 1.0.0 is fine.
        health: (m) => {
          const real = inf.health(m);
          if (!real) return real;
          return real.version === '1.1.0' ? { ...real, requests: 20, errors: 5, errorRate: 0.25 } : { ...real, requests: 20 };
        },
      }),
    });
    await h.manager.apply(desired({ digits: { version: '1.0.0' } }));
    await h.manager.idle();
    await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    await h.manager.idle();
    expect(h.manager.models().digits).toMatchObject({ version: '1.0.0', state: 'failed', error: 'FLT_OTA_HEALTH_FAILED', target: '1.1.0' });
    expect((await h.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
    expect(h.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, previous: null });
    expect(h.kinds().slice(-2)).toEqual(['ota.activated', 'ota.failed']);
  });

  it('keeps only the active and previous files when a third version arrives', async () => {
    const { server, key, h } = await installed();
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    publish(server, key, card('tiny-mlp-fp32'), 'digits', '1.2.0', { counter: 3 });
    await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    await h.manager.idle();
    await h.manager.apply(desired({ digits: { version: '1.2.0' } }));
    await h.manager.idle();
    const kept = readdirSync(h.manager.cache.verifiedDir).sort();
    expect(kept).toEqual([sha256(modelBytes('mnist-edge-fp32')), sha256(modelBytes('tiny-mlp-fp32'))].sort());
  });

  it('comes back on the committed active slot after a restart with an unfinished switch', async () => {
    const { server, key, h } = await installed();
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    const slots = h.manager.store.slots('digits');
    // As if killed between writing the pending slot and committing the switch.
    h.manager.store.saveSlots({ ...slots, pending: { ...slots.active!, version: '1.1.0' } });
    const after = await h.restart();
    await after.manager.start();
    expect(after.manager.models().digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
    expect(after.manager.store.slots('digits').pending).toBeNull();
    expect((await after.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
  });

  it('falls back to the previous slot at start when the active file is damaged', async () => {
    const { server, key, h } = await installed();
    publish(server, key, card('mnist-edge-fp32'), 'digits', '1.1.0', { counter: 2 });
    await h.manager.apply(desired({ digits: { version: '1.1.0' } }));
    await h.manager.idle();
    const active = h.manager.store.slots('digits').active!;
    writeFileSync(h.manager.cache.pathFor(active.sha256), corruptModelBytes(modelBytes('mnist-edge-fp32'), 'garble'));
    const after = await h.restart();
    await after.manager.start();
    expect(after.manager.models().digits).toMatchObject({ version: '1.0.0', state: 'failed', error: 'FLT_OTA_HASH_MISMATCH' });
    expect(after.manager.store.slots('digits')).toMatchObject({ active: { version: '1.0.0' }, previous: null });
    expect((await after.inference.infer('digits', goldenInputs(card('mnist-edge-int8')))).version).toBe('1.0.0');
  });

  it('downloads at once but activates only once activateAfter has come (maintenance window)', async () => {
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const timers = new FakeTimers(Date.now());
    const h = await harness(server, { timers });
    const at = timers.now() + 3_600_000;
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0', activateAfter: at } }));
    expect(models.digits).toMatchObject({ version: null, state: 'verified', target: '1.0.0', activateAfter: at });
    expect(h.inference.status()).toEqual([]);
    await timers.advance(3_600_000);
    await h.manager.idle();
    expect(h.manager.models().digits).toMatchObject({ version: '1.0.0', state: 'healthy' });
  });

  it('keeps waiting for a maintenance window more than 24.8 days away (longer than one Node timer holds)', async () => {
    // The agent's real timers: a plain setTimeout of this length fires after 1 ms instead.
    const { server, key } = await setup();
    publish(server, key, card('mnist-edge-int8'), 'digits', '1.0.0', { counter: 1 });
    const h = await harness(server);
    const at = Date.now() + 40 * 86_400_000;
    const models = await h.manager.apply(desired({ digits: { version: '1.0.0', activateAfter: at } }));
    expect(models.digits).toMatchObject({ version: null, state: 'verified', target: '1.0.0', activateAfter: at });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(h.manager.models().digits).toMatchObject({ version: null, state: 'verified', activateAfter: at });
    expect(h.inference.status()).toEqual([]);
  });
});
