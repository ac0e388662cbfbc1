import { runFloat, withSession } from '../onnx/session.ts';
import { maxAbsDiff } from '../golden.ts';

/** A batch of rows for a model with one float input. */
export interface FloatBatch {
  data: Float32Array;
  dims: number[];
}

export interface ModelIo {
  inputName: string;
  outputName: string;
}

/** Runs ONNX bytes over a batch in onnxruntime and returns the flat output. */
export async function runBytes(bytes: Uint8Array, io: ModelIo, batch: FloatBatch): Promise<Float32Array> {
  return withSession(bytes, (s) => runFloat(s, { name: io.inputName, data: batch.data, dims: batch.dims }, io.outputName));
}

/** Worst element-wise difference between two builds of one model over the same batches, measured in onnxruntime. */
export async function measureDisagreement(reference: Uint8Array, candidate: Uint8Array, io: ModelIo, batches: readonly FloatBatch[]): Promise<number> {
  let worst = 0;
  for (const batch of batches) {
    worst = Math.max(worst, maxAbsDiff(await runBytes(reference, io, batch), await runBytes(candidate, io, batch)));
  }
  return worst;
}
