/**
 * A/B routing cost: (1) the arm decision alone (AbSplitRun.pick), unkeyed (one random draw) and
 * sticky (hash of a 16-character key), in ns per decision; (2) answer latency through
 * InferenceService.infer, mnist-edge-int8 batch 1, with the same build staged as the candidate:
 * split off against a split at share 0 (every request still routed, counted and scored for
 * confidence, all on the control: the bookkeeping alone) and at share 0.5 (requests alternate
 * between the two versions' worker threads). Variants take turns within a repetition.
 */
import { performance } from 'node:perf_hooks';
import { AbSplitRun, InferenceService, type Tensor } from '../../src/inference/index.ts';
import { median, quantile, round } from '../stats.ts';

export interface AbCostParams {
  modelPath: string;
  iterations: number;
  decisions: number;
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

/** ns per pick() over `n` decisions; `keys` cycles when given. */
function pickNs(run: AbSplitRun, n: number, keys?: readonly string[]): number {
  let candidate = 0;
  const t = performance.now();
  for (let i = 0; i < n; i++) if (run.pick(keys ? keys[i & 1023] : undefined) === 'candidate') candidate++;
  const ns = ((performance.now() - t) * 1e6) / n;
  // Keeps the loop's result alive.
  if (candidate < 0) console.log(candidate);
  return ns;
}

export async function runAbCost(p: AbCostParams) {
  const keys = Array.from({ length: 1024 }, (_, i) => `caller-${String(i).padStart(9, '0')}`);
  const versions = { control: '1', candidate: '2' };
  const unkeyed = new AbSplitRun('digits', versions, { share: 0.5 }, 0);
  const sticky = new AbSplitRun('digits', versions, { share: 0.5, sticky: 'x-caller' }, 0);
  pickNs(unkeyed, p.decisions);
  pickNs(sticky, p.decisions, keys);

  const spec = (version: string) => ({ model: 'digits', version, path: p.modelPath, format: 'onnx' as const, providers: ['cpu' as const] });
  const svc = new InferenceService();
  await svc.load(spec('1'));
  await svc.stage(spec('2'));
  const inputs = Array.from({ length: p.iterations }, (_, i) => inputOf(i));
  for (let i = 0; i < p.warmup; i++) await svc.infer('digits', inputs[i % inputs.length] as Tensor[]);
  type Rep = {
    pickUnkeyedNs: number;
    pickStickyNs: number;
    offP50Us: number;
    share0P50Us: number;
    share0AddedP50Us: number;
    share0Ratio: number;
    abP50Us: number;
    addedP50Us: number;
    ratio: number;
    candidateShare: number;
  };
  const reps: Rep[] = [];
  for (let r = 0; r < p.reps; r++) {
    const pickUnkeyedNs = pickNs(unkeyed, p.decisions);
    const pickStickyNs = pickNs(sticky, p.decisions, keys);
    const off = await p50Us(svc, inputs);
    svc.startAb('digits', { share: 0 });
    const zero = await p50Us(svc, inputs);
    svc.startAb('digits', { share: 0.5 });
    const on = await p50Us(svc, inputs);
    const report = svc.stopAb('digits');
    const served = (report?.control.requests ?? 0) + (report?.candidate.requests ?? 0);
    const rep: Rep = {
      pickUnkeyedNs: round(pickUnkeyedNs),
      pickStickyNs: round(pickStickyNs),
      offP50Us: round(off),
      share0P50Us: round(zero),
      share0AddedP50Us: round(zero - off),
      share0Ratio: round(zero / off, 3),
      abP50Us: round(on),
      addedP50Us: round(on - off),
      ratio: round(on / off, 3),
      candidateShare: round(served > 0 ? (report?.candidate.requests ?? 0) / served : 0, 3),
    };
    reps.push(rep);
    console.log(
      `  ab rep ${r + 1}: pick ${rep.pickUnkeyedNs} ns unkeyed, ${rep.pickStickyNs} ns sticky; answer p50 off ${rep.offP50Us} µs, share 0 ${rep.share0P50Us} µs (+${rep.share0AddedP50Us}), share 0.5 ${rep.abP50Us} µs (+${rep.addedP50Us}, ×${rep.ratio}); candidate share ${rep.candidateShare}`,
    );
  }
  await svc.close();
  const medians = Object.fromEntries((Object.keys(reps[0] ?? {}) as Array<keyof Rep>).map((k) => [k, round(median(reps.map((r) => r[k])), 3)])) as Rep;
  return { params: { ...p, share: 0.5, batch: 1 }, reps, medians };
}
