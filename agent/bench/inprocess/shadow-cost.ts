/**
 * (e) Shadow-mode cost per request, mnist-edge-int8 batch 1: answer latency through
 * InferenceService.infer with the same build staged as the candidate, shadow off against shadow
 * share 1.0 (every answered request also runs on the candidate, after its answer). Requests are
 * sent one after another, so a mirror runs beside the next request; variants take turns within a
 * repetition.
 */
import { performance } from 'node:perf_hooks';
import { InferenceService, type Tensor } from '../../src/inference/index.ts';
import { median, quantile, round } from '../stats.ts';

export interface ShadowCostParams {
  modelPath: string;
  iterations: number;
  warmup: number;
  reps: number;
}

function inputOf(i: number): Tensor[] {
  const data = new Float32Array(784).map((_, j) => (Math.sin(i * 784 + j) + 1) / 2);
  return [{ name: 'input', datatype: 'FP32', shape: [1, 784], data }];
}

async function p50Us(svc: InferenceService, inputs: readonly Tensor[][]): Promise<number> {
  const out = new Array<number>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const t = performance.now();
    await svc.infer('digits', inputs[i] as Tensor[]);
    out[i] = (performance.now() - t) * 1000;
  }
  return quantile(out, 0.5);
}

export async function runShadowCost(p: ShadowCostParams) {
  const spec = (version: string) => ({ model: 'digits', version, path: p.modelPath, format: 'onnx' as const, providers: ['cpu' as const] });
  const svc = new InferenceService();
  await svc.load(spec('1'));
  await svc.stage(spec('2'));
  const inputs = Array.from({ length: p.iterations }, (_, i) => inputOf(i));
  for (let i = 0; i < p.warmup; i++) await svc.infer('digits', inputs[i % inputs.length] as Tensor[]);
  type Rep = { offP50Us: number; shadowP50Us: number; addedP50Us: number; mirrored: number; dropped: number };
  const reps: Rep[] = [];
  for (let r = 0; r < p.reps; r++) {
    const off = await p50Us(svc, inputs);
    svc.startShadow('digits', { share: 1 });
    const on = await p50Us(svc, inputs);
    const report = svc.stopShadow('digits');
    const rep: Rep = { offP50Us: round(off), shadowP50Us: round(on), addedP50Us: round(on - off), mirrored: report?.samples ?? 0, dropped: report?.dropped ?? 0 };
    reps.push(rep);
    console.log(`  shadow rep ${r + 1}: answer p50 off ${rep.offP50Us} µs, share 1.0 ${rep.shadowP50Us} µs (+${rep.addedP50Us}); mirrored ${rep.mirrored}, dropped ${rep.dropped}`);
  }
  await svc.close();
  const medians = Object.fromEntries((Object.keys(reps[0] ?? {}) as Array<keyof Rep>).map((k) => [k, round(median(reps.map((r) => r[k])))])) as Rep;
  return { params: { ...p, share: 1, batch: 1 }, reps, medians };
}
