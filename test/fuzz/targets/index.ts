import type { RunOptions, TargetReport } from '../harness/fuzz-report.ts';

export interface FuzzTarget {
  name: string;
  run(opts: RunOptions): Promise<TargetReport>;
  /** Share of the full run's total (FLOTILLA_FUZZ_RUNS), by what one run costs on a 2-core machine. */
  share: number;
}

export const TARGETS: readonly FuzzTarget[] = [
  // Imported when run, so a child process loads only its own target (no server for the codec, no onnxruntime for REST).
  { name: 'mqtt-decode', run: async (o) => (await import('./mqtt-decode.ts')).fuzzMqttDecode(o), share: 0.55 },
  { name: 'release-manifest', run: async (o) => (await import('./release-manifest.ts')).fuzzReleaseManifest(o), share: 0.25 },
  { name: 'rest-admin', run: async (o) => (await import('./rest-admin.ts')).fuzzRestAdmin(o), share: 0.1 },
  { name: 'mqtt-ingest', run: async (o) => (await import('./mqtt-ingest.ts')).fuzzMqttIngest(o), share: 0.0975 },
  // onnxruntime loads cost most of a second each (a worker thread and a session per case).
  { name: 'onnx-load', run: async (o) => (await import('./onnx-load.ts')).fuzzOnnxLoad(o), share: 0.0025 },
];

export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target ${JSON.stringify(name)} (known: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
