import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModels, modelDir, modelPath } from '@flotilla/modelkit';
import * as ort from 'onnxruntime-node';
import { onTestFinished } from 'vitest';
import { buildPoolWorker, type PoolWorker } from '../src/index.ts';
import type { PoolTimers, TimerHandle } from '../src/runtime/timers.ts';

/** buildModels is idempotent and locks its folder, so one cache folder serves every test file and run. */
const BUILD_DIR = join(tmpdir(), 'flotilla-pool-models');
export const MODEL = 'mnist-cloud';
const BUILD = 'mnist-cloud-fp32';

export async function cloudModelPath(): Promise<string> {
  await buildModels(BUILD_DIR, { only: [BUILD] });
  return modelPath(BUILD_DIR, BUILD);
}

/** Real MNIST digits from the model's evaluation set, one Float32Array of 784 per digit. */
export async function digits(count: number): Promise<Float32Array[]> {
  await cloudModelPath();
  const set = JSON.parse(await readFile(join(modelDir(BUILD_DIR, BUILD), 'eval-set.json'), 'utf8')) as { data: number[][] };
  return set.data.slice(0, count).map((d) => Float32Array.from(d));
}

/** A temp model repository holding the cloud model as `<repo>/mnist-cloud/<version>/model.onnx`; removed after the test. */
export async function makeRepository(versions: string[] = ['1'], config?: unknown): Promise<string> {
  const src = await cloudModelPath();
  const repo = await mkdtemp(join(tmpdir(), 'flotilla-pool-repo-'));
  onTestFinished(() => rm(repo, { recursive: true, force: true }));
  for (const v of versions) await addVersion(repo, MODEL, v, src);
  if (config !== undefined) await writeFile(join(repo, MODEL, 'config.json'), JSON.stringify(config));
  return repo;
}

export async function addVersion(repo: string, model: string, version: string, src?: string): Promise<void> {
  await mkdir(join(repo, model, version), { recursive: true });
  await copyFile(src ?? (await cloudModelPath()), join(repo, model, version, 'model.onnx'));
}

/** A started pool worker over `repo` (not listening: tests use inject() unless they listen). Closed after the test. */
export async function startWorker(repo: string, config: Record<string, unknown> = {}): Promise<PoolWorker> {
  const worker = buildPoolWorker({ config: { modelRepository: repo, host: '127.0.0.1', port: 0, ...config } });
  onTestFinished(() => worker.close());
  await worker.start();
  return worker;
}

/** The reference: the same model run directly by onnxruntime on this thread. */
export async function directRun(rows: Float32Array[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(await cloudModelPath());
  try {
    const data = new Float32Array(rows.length * 784);
    rows.forEach((r, i) => data.set(r, i * 784));
    const out = await session.run({ input: new ort.Tensor('float32', data, [rows.length, 784]) });
    return (out.probabilities as ort.Tensor).data as Float32Array;
  } finally {
    await session.release();
  }
}

/** A metric's value from the worker's registry (0 when the series does not exist yet); `_sum` / `_count` read a histogram. */
export async function metricValue(worker: PoolWorker, name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_(sum|count)$/, '');
  const metric = await (worker.registry.getSingleMetric(name) ?? worker.registry.getSingleMetric(base))?.get();
  const found = metric?.values.find(
    (v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && ((v as { metricName?: string }).metricName ?? name) === name,
  );
  return found?.value ?? 0;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(d <= tolerance)) throw new Error(`element ${i}: ${actual[i]} vs ${expected[i]} (diff ${d})`);
  }
}

/** Timers driven by hand: `advance(ms)` moves the clock and fires what fell due, in order. */
export class FakeTimers implements PoolTimers {
  private time = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle & { id: number } {
    const id = ++this.seq;
    this.pending.set(id, { at: this.time + ms, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending.delete((handle as { id: number }).id);
  }

  get scheduled(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= until && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.pending.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = until;
  }
}
