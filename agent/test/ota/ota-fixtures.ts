import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { onTestFinished } from 'vitest';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';
import type { ReportedState } from '@flotilla/protocol';
import { exportPublicKey, generateSigningKeyPair, sign, type ReleaseManifest, type SigningKeyPair, type VariantConstraints } from '@flotilla/release';
import { InferenceService } from '../../src/inference/service/inference-service.ts';
import { ModelManager, type OtaInference } from '../../src/ota/model-manager.ts';
import type { OtaConfig } from '../../src/ota/ota-config.ts';
import type { Timers } from '../../src/runtime/timers.ts';
import { fakeInventory } from '../helpers/agent-harness.ts';
import { silentLogger } from '../helpers/logger.ts';
import type { TestArtifactServer } from './test-artifact-server.ts';

export const MODELS = ['mnist-edge-int8', 'mnist-edge-fp32', 'mnist-edge-int8-bad-golden', 'mnist-edge-int8-unloadable', 'tiny-mlp-fp32'] as const;

/** modelkit builds are deterministic and cached by generator hash: one shared build folder for every OTA test file. */
const BUILD_DIR = join(tmpdir(), 'flotilla-ota-test-models');

export async function builtModels(): Promise<Map<string, ModelCard>> {
  return new Map((await buildModels(BUILD_DIR, { only: [...MODELS] })).map((c) => [c.name, c]));
}

export function modelBytes(build: string): Buffer {
  return readFileSync(modelPath(BUILD_DIR, build));
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface PublishOptions {
  counter: number;
  /** Sign and serve these bytes instead of the build's file. */
  bytes?: Buffer;
  constraints?: VariantConstraints;
  /** Serve these bytes instead of the signed ones (same sha in the URL). */
  servedBytes?: Buffer;
  expiresAt?: number;
  mutate?: (release: { signed: ReleaseManifest; signatures: unknown[] }) => void;
  key?: SigningKeyPair;
}

/** Signs a one-variant release of `build` as `model@version` and puts it and its artifact on the test server. */
export function publish(server: TestArtifactServer, key: SigningKeyPair, card: ModelCard, model: string, version: string, opts: PublishOptions): ReleaseManifest {
  const bytes = opts.bytes ?? modelBytes(card.name);
  const now = Date.now();
  const manifest: ReleaseManifest = {
    schema: 1,
    model,
    version,
    releaseCounter: opts.counter,
    issuedAt: now - 1000,
    expiresAt: opts.expiresAt ?? now + 86_400_000,
    variants: [{ id: 'cpu-int8', file: { name: 'model.onnx', sha256: sha256(bytes), length: bytes.length }, format: 'onnx', precision: 'int8', constraints: opts.constraints ?? {} }],
  };
  const release = sign(manifest, (opts.key ?? key).privateKey) as { signed: ReleaseManifest; signatures: unknown[] };
  opts.mutate?.(release);
  server.artifacts.set(sha256(bytes), opts.servedBytes ?? bytes);
  server.release(model, version, {
    release,
    metadata: { inputs: card.inputs, outputs: card.outputs, golden: card.golden },
  });
  return manifest;
}

export function trustKeys(server: TestArtifactServer, key: SigningKeyPair): void {
  server.keys = [{ keyId: key.keyId, publicKey: exportPublicKey(key.publicKey) }];
}

export interface Harness {
  dataDir: string;
  inference: InferenceService;
  manager: ModelManager;
  events: Array<{ kind: string; data: Record<string, unknown> }>;
  reports: Array<{ models: ReportedState['models']; generation: number | undefined }>;
  kinds(model?: string): string[];
  /** Opens another manager on the same folder (a restart), with a fresh inference service. */
  restart(): Promise<Harness>;
}

export const FAST: Partial<OtaConfig> = {
  health: { windowMs: 0, minRequests: 0, maxErrorRate: 0.05, maxP99Ms: null, maxWaitMs: 0, pollMs: 10 },
  download: { stallMs: 2_000, maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50, progressIntervalMs: 0 },
  reserveBytes: 0,
  retryMs: 3_600_000,
};

export async function harness(
  server: TestArtifactServer,
  opts: { dataDir?: string; config?: Partial<OtaConfig>; timers?: Timers; freeBytes?: (p: string) => Promise<number>; wrapInference?: (i: InferenceService) => OtaInference } = {},
): Promise<Harness> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'flt-ota-'));
  if (!opts.dataDir) onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
  const inference = new InferenceService({ warmupRuns: 1 });
  const manager = new ModelManager({
    dataDir,
    inference: opts.wrapInference ? opts.wrapInference(inference) : inference,
    logger: silentLogger,
    config: { ...FAST, ...opts.config },
    ...(opts.timers ? { timers: opts.timers } : {}),
    ...(opts.freeBytes ? { freeBytes: opts.freeBytes } : {}),
  });
  // Registered in this order so the manager closes first (vitest runs cleanups in reverse).
  onTestFinished(() => inference.close());
  onTestFinished(() => manager.close());
  const events: Harness['events'] = [];
  const reports: Harness['reports'] = [];
  manager.attach({
    enqueueEvent: (kind, data) => events.push({ kind, data }),
    reportModels: (models, generation) => reports.push({ models, generation }),
    inventory: () => fakeInventory,
    server: () => ({ url: server.url, authorization: `Basic ${Buffer.from('edge-1:secret').toString('base64')}` }),
  });
  const h: Harness = {
    dataDir,
    inference,
    manager,
    events,
    reports,
    kinds: (model) => events.filter((e) => model === undefined || e.data.model === model).map((e) => e.kind),
    restart: async () => {
      await manager.close();
      await inference.close();
      return harness(server, { ...opts, dataDir });
    },
  };
  return h;
}

export function newKey(): SigningKeyPair {
  return generateSigningKeyPair();
}

/** A float32 golden input of the card, as the inference service takes it. */
export function goldenInputs(card: ModelCard) {
  return Object.entries(card.golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32' as const, shape: [...t.shape], data: Float32Array.from(t.data) }));
}
