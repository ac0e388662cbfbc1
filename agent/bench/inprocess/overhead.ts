/**
 * (a) In-process overhead: InferenceService.infer latency minus raw `session.run` on the main
 * thread, tiny-mlp-fp32, batch 1, one request at a time. Raw and each channel take turns within
 * every repetition so they see the same machine load.
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { InferenceService, type InferenceServiceOptions } from '../../src/inference/index.ts';
import { median, quantile, round } from '../stats.ts';

export interface OverheadParams {
  modelPath: string;
  iterations: number;
  warmup: number;
  reps: number;
}

const VARIANTS: Record<string, InferenceServiceOptions['onnx']> = {
  // Defaults: the idle worker polls up to 50 µs for the next request; the agent thread does not poll.
  'shared-memory': { channel: 'shared-memory' },
  // Neither side polls: every request pays a futex wake-up on the way in and a waitAsync wake-up back.
  'shared-memory-no-poll': { channel: 'shared-memory', workerSpinUs: 0 },
  // Both poll: the agent thread up to 40 µs when the worker's recent runs were that short.
  'shared-memory+agent-poll40us': { channel: 'shared-memory', spinUs: 40 },
  'post-message': { channel: 'post-message' },
};

async function timeLoop(n: number, once: () => Promise<unknown>): Promise<number[]> {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    out[i] = (performance.now() - t) * 1000;
  }
  return out;
}

export async function runOverhead(p: OverheadParams) {
  const session = await ort.InferenceSession.create(p.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
  const data = new Float32Array(16).map((_, i) => Math.sin(i));
  const raw = () => session.run({ input: new ort.Tensor('float32', data, [1, 16]) });
  const services = new Map<string, InferenceService>();
  for (const [name, onnx] of Object.entries(VARIANTS)) {
    const s = new InferenceService({ onnx: onnx ?? {} });
    await s.load({ model: 'tiny-mlp', version: '1', path: p.modelPath, format: 'onnx', providers: ['cpu'] });
    services.set(name, s);
  }
  const inputs = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 16], data }];
  await timeLoop(p.warmup, raw);
  for (const s of services.values()) await timeLoop(p.warmup, () => s.infer('tiny-mlp', inputs));

  const reps: Array<Record<string, { p50Us: number; p99Us: number; overheadP50Us?: number; overheadP99Us?: number }>> = [];
  for (let r = 0; r < p.reps; r++) {
    const rawUs = await timeLoop(p.iterations, raw);
    const rep: (typeof reps)[number] = { raw: { p50Us: round(quantile(rawUs, 0.5)), p99Us: round(quantile(rawUs, 0.99)) } };
    for (const [name, s] of services) {
      const us = await timeLoop(p.iterations, () => s.infer('tiny-mlp', inputs));
      const p50 = quantile(us, 0.5);
      const p99 = quantile(us, 0.99);
      rep[name] = { p50Us: round(p50), p99Us: round(p99), overheadP50Us: round(p50 - quantile(rawUs, 0.5)), overheadP99Us: round(p99 - quantile(rawUs, 0.99)) };
    }
    reps.push(rep);
    console.log(`  overhead rep ${r + 1}: ` + Object.entries(rep).map(([k, v]) => `${k} p50 ${v.p50Us} µs${v.overheadP50Us !== undefined ? ` (+${v.overheadP50Us})` : ''}`).join(' | '));
  }
  for (const s of services.values()) await s.close();
  await session.release();
  const medians: Record<string, { p50Us: number; p99Us: number; overheadP50Us?: number; overheadP99Us?: number }> = {};
  for (const name of ['raw', ...services.keys()]) {
    const pick = (k: 'p50Us' | 'p99Us' | 'overheadP50Us' | 'overheadP99Us') => round(median(reps.map((r) => r[name]?.[k] as number)));
    medians[name] = name === 'raw' ? { p50Us: pick('p50Us'), p99Us: pick('p99Us') } : { p50Us: pick('p50Us'), p99Us: pick('p99Us'), overheadP50Us: pick('overheadP50Us'), overheadP99Us: pick('overheadP99Us') };
  }
  return {
    params: p,
    reps,
    medians,
    target: { overheadP50Us: 30, channel: 'shared-memory', met: (medians['shared-memory']?.overheadP50Us ?? Infinity) <= 30 },
  };
}
