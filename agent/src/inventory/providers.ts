import type * as OrtApi from 'onnxruntime-node';
import type { ExecutionProvider } from '@flotilla/protocol';
import { PROBE_INPUT, PROBE_SHAPE, encodeProbeModel } from './probe-model.ts';

export type ProbeProvider = Extract<ExecutionProvider, 'tensorrt' | 'cuda' | 'cpu'>;

/** Says which providers can really create (and run) a session here. */
export type ProviderProber = (providers: readonly ProbeProvider[]) => Promise<{ available: ProbeProvider[]; runtimeVersion?: string; failures: Record<string, string> }>;

/**
 * onnxruntime-node lists CUDA and TensorRT on every x64 build but throws when their libraries
 * are missing, so "compiled in" proves nothing: each provider must create a session on a tiny
 * model on its own (no fallback list) and run it once. onnxruntime is imported lazily so an agent
 * that never probes does not load it.
 */
export const onnxruntimeProber: ProviderProber = async (providers) => {
  // onnxruntime-node is CommonJS: depending on the loader its API is the namespace or its default export.
  const mod = (await import('onnxruntime-node')) as unknown as typeof OrtApi & { default?: typeof OrtApi };
  const ort = mod.default ?? mod;
  const { createRequire } = await import('node:module');
  let runtimeVersion: string | undefined;
  try {
    runtimeVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    runtimeVersion = undefined;
  }
  const model = encodeProbeModel();
  const available: ProbeProvider[] = [];
  const failures: Record<string, string> = {};
  for (const provider of providers) {
    let session: Awaited<ReturnType<typeof ort.InferenceSession.create>> | undefined;
    try {
      // Severity 4 (fatal only): a missing CUDA library is an expected answer, not an error to print.
      session = await ort.InferenceSession.create(model, { executionProviders: [provider], logSeverityLevel: 4 });
      const input = new ort.Tensor('float32', Float32Array.from([-1, 0.5, -0.25, 2]), [...PROBE_SHAPE]);
      await session.run({ [PROBE_INPUT]: input });
      available.push(provider);
    } catch (err) {
      failures[provider] = ((err as Error).message ?? String(err)).slice(0, 200);
    } finally {
      await session?.release().catch(() => undefined);
    }
  }
  return runtimeVersion ? { available, runtimeVersion, failures } : { available, failures };
};
