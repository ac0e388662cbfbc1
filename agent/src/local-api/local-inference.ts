import type { ExecutionProvider } from '@flotilla/protocol';
import type { Tensor, TensorSpec } from '../inference/types.ts';

/**
 * What the local HTTP API needs from the inference side. The agent's InferenceService satisfies it
 * as is; the seam keeps the HTTP layer testable and free of slot and backend details.
 */
export interface LocalInference {
  infer(
    model: string,
    inputs: readonly Tensor[],
    opts?: { version?: string; outputs?: readonly string[]; signal?: AbortSignal; transferInputs?: boolean; stickyKey?: (name: string) => string | undefined },
  ): Promise<LocalInferResult>;
  status(): readonly LocalModelStatus[];
  /**
   * Whether a request to `model` can still be called off once `infer` has it: true when it may
   * wait on the network (a cloud escalation, a sidecar server). The HTTP API ties a client's
   * hang-up to an AbortSignal only then, since making one costs about 6 µs on Node 20 (a tenth of
   * a small model's whole request) and a request already in an onnxruntime worker cannot be
   * recalled. Absent: always.
   */
  cancellable?(model: string): boolean;
}

export interface LocalInferResult {
  outputs: Tensor[];
  model: string;
  version: string;
  provider: ExecutionProvider;
  latencyMs: number;
  /**
   * KServe response parameters to pass on to the caller. The escalator (agent/src/escalation) says
   * here where a request was answered (`flotilla_answered_by`: edge, cloud, edge-fallback) and why.
   */
  parameters?: Record<string, string | number | boolean>;
  /** Set when the model has a result cache: whether this answer came from it (`flotilla_cache`). */
  cache?: 'hit' | 'miss';
  /** Set while the model has an A/B split: the arm that answered (`flotilla_ab_arm`). */
  arm?: 'control' | 'candidate';
}

export interface LocalVersionStatus {
  version: string;
  provider: ExecutionProvider;
  backend: 'onnxruntime' | 'kserve-sidecar';
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

/** A model's A/B slots: requests go to `active`; `previous` still answers when asked by version. */
export interface LocalModelStatus {
  model: string;
  active: LocalVersionStatus | null;
  previous: LocalVersionStatus | null;
}

/** The versions a request may name: active first, then previous. */
export function servableVersions(status: LocalModelStatus): LocalVersionStatus[] {
  return [status.active, status.previous].filter((v): v is LocalVersionStatus => v !== null);
}
