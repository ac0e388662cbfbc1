import type { ExecutionProvider } from '@flotilla/protocol';
import type * as OrtModule from 'onnxruntime-node';

/** The providers onnxruntime can serve, in Flotilla's preference order. */
export type OrtProvider = Extract<ExecutionProvider, 'tensorrt' | 'cuda' | 'cpu'>;
export const ORT_PROVIDERS: readonly OrtProvider[] = ['tensorrt', 'cuda', 'cpu'];

/**
 * Says which providers are worth trying on this device. It is a hint, not a promise: a provider
 * listed here may still throw when a session asks for it (x64 builds list CUDA and TensorRT even
 * with no GPU), and the load walks on to the next one. Injected so tests can play a GPU machine.
 */
export type AvailableProviders = () => readonly ExecutionProvider[] | Promise<readonly ExecutionProvider[]>;

/** What this onnxruntime-node build was compiled with (CPU is always there). */
export const ortAvailableProviders: AvailableProviders = async () => {
  // onnxruntime-node is CommonJS: under tsx its exports sit on the namespace, under vitest on `default`.
  const mod = (await import('onnxruntime-node')) as typeof OrtModule & { default?: typeof OrtModule };
  const list = mod.listSupportedBackends ?? mod.default?.listSupportedBackends;
  const names = new Set((list?.() ?? []).map((b) => b.name));
  names.add('cpu');
  return ORT_PROVIDERS.filter((p) => names.has(p));
};

/** The spec's preference order, kept to providers onnxruntime serves and the probe lists; CPU stays last resort only if asked for. */
export function providersToTry(preferred: readonly ExecutionProvider[], available: readonly ExecutionProvider[]): OrtProvider[] {
  const allowed = new Set(available);
  const out: OrtProvider[] = [];
  for (const p of preferred) {
    if ((ORT_PROVIDERS as readonly string[]).includes(p) && allowed.has(p) && !out.includes(p as OrtProvider)) out.push(p as OrtProvider);
  }
  return out;
}
