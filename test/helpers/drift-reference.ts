import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVAL_SET_FILE, modelDir, modelPath, type EvalSet } from '@flotilla/modelkit';
import type { DriftSummary } from '@flotilla/protocol';
import { DriftAccumulator } from '../../agent/src/inference/drift-summary.ts';
import { InferenceService } from '../../agent/src/inference/service/inference-service.ts';

/** The eval set modelkit ships next to an MNIST build. */
export function readEvalSet(buildDir: string, build: string): EvalSet {
  return JSON.parse(readFileSync(join(modelDir(buildDir, build), EVAL_SET_FILE), 'utf8')) as EvalSet;
}

/**
 * The drift reference of a build, the way a release pipeline captures it at registration: the
 * build's eval set run through the model with real onnxruntime, summarized with the agent's own
 * accumulator so reference and live summaries are binned the same way.
 */
export async function buildDriftReference(buildDir: string, build: string, range: readonly [number, number] = [0, 1]): Promise<DriftSummary> {
  const set = readEvalSet(buildDir, build);
  const width = set.shape[1] as number;
  const service = new InferenceService({ warmupRuns: 0 });
  try {
    await service.load({ model: 'reference', version: '0', path: modelPath(buildDir, build), format: 'onnx', providers: ['cpu'] });
    const acc = new DriftAccumulator(range);
    // One request per row, as live traffic usually comes; the input statistics do not depend on it.
    for (const values of set.data) {
      const inputs = [{ name: set.input, datatype: 'FP32' as const, shape: [1, width], data: Float32Array.from(values) }];
      acc.addInputs(inputs);
      acc.addOutputs((await service.infer('reference', inputs)).outputs);
    }
    return acc.summary();
  } finally {
    await service.close();
  }
}
