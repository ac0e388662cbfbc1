import * as ort from 'onnxruntime-node';

/**
 * Opens a CPU session with one intra-op thread: build checks and tests run beside other work on
 * small machines, and one thread keeps results and timings comparable.
 */
export async function openSession(model: string | Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  };
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

/** Runs a single-input, single-output float model over a batch and returns the flat output. */
export async function runFloat(
  session: ort.InferenceSession,
  input: { name: string; data: Float32Array; dims: readonly number[] },
  outputName: string,
): Promise<Float32Array> {
  const result = await session.run({ [input.name]: new ort.Tensor('float32', input.data, input.dims) });
  const out = result[outputName];
  if (out === undefined) throw new Error(`model gave no output named ${outputName}`);
  return out.data as Float32Array;
}

/** Opens a session for one use and always releases it. */
export async function withSession<T>(model: string | Uint8Array, use: (session: ort.InferenceSession) => Promise<T>): Promise<T> {
  const session = await openSession(model);
  try {
    return await use(session);
  } finally {
    await session.release();
  }
}
