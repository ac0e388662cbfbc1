import type { MessagePort } from 'node:worker_threads';

/** Messages between the agent thread and session-worker.mjs (that file is plain JavaScript). */

export interface WorkerInit {
  path: string;
  providers: string[];
  intraOpThreads: number;
  /** Shared-memory channel only: the fast lane and the port the worker drains after each wake-up. */
  lane?: SharedArrayBuffer;
  port?: MessagePort;
  /** Shared-memory channel only: how long (µs) the idle worker polls the lane before it sleeps. */
  spinUs?: number;
  /** Nice increment while the thread loads the addon and the session (0: none). */
  loadNice?: number;
  /** Run the addon's native session directly rather than through the public class (see session-direct.mjs). */
  direct?: boolean;
}

export interface WireTensor {
  name: string;
  /** onnxruntime type name (float32, int64, string, ...). */
  type: string;
  dims: readonly number[];
  data: unknown;
}

/** Declared input/output as the worker reads it from the session; type null for non-tensors. */
export interface WireSpec {
  name: string;
  type: string | null;
  shape: number[];
}

export interface ProviderAttempt {
  provider: string;
  error: string;
}

/** exit-now: fault injection, the thread exits at its next message check as a crash would. */
export type ToWorker = { t: 'run'; id: number; feeds: WireTensor[]; outputs?: string[] } | { t: 'close' } | { t: 'exit-now' };

export type FromWorker =
  | { t: 'ready'; provider: string; attempts: ProviderAttempt[]; inputs: WireSpec[]; outputs: WireSpec[]; runner: 'native' | 'public' }
  | { t: 'load-failed'; attempts: ProviderAttempt[] }
  | { t: 'result'; id: number; outputs: WireTensor[] }
  | { t: 'error'; id: number; message: string }
  | { t: 'closed' };
