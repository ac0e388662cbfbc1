import { onTestFinished } from 'vitest';
import type { EscalationPolicy, EscalationRoute } from '@flotilla/protocol';
import { CloudClient, type CloudClientOptions } from '../../src/escalation/cloud-client.ts';
import { Escalator, type EscalatorOptions } from '../../src/escalation/escalator.ts';
import type { Tensor } from '../../src/inference/types.ts';
import type { LocalInference, LocalInferResult } from '../../src/local-api/local-inference.ts';
import { Outbox } from '../../src/outbox/outbox.ts';
import { openAgentDatabase } from '../../src/storage/database.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/**
 * A stand-in for the device's inference: the first input value is the top-class probability it
 * answers with (class 0), the rest shared by the other two classes. Lets tests pick confidence.
 */
export class ScriptedLocal implements LocalInference {
  calls = 0;
  async infer(model: string, inputs: readonly Tensor[]): Promise<LocalInferResult> {
    this.calls++;
    const p = Number((inputs[0]!.data as Float32Array)[0]);
    const rest = (1 - p) / 2;
    return { outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: Float32Array.from([p, rest, rest]) }], model, version: '1.0.0', provider: 'cpu', latencyMs: 0 };
  }
  status() {
    return [{ model: 'digits', active: { version: '1.0.0', provider: 'cpu' as const, backend: 'onnxruntime' as const, inputs: [], outputs: [] }, previous: null }];
  }
}

/** The cloud's answer in tests: class 1 for sure. */
export const CLOUD_ANSWER = (): Tensor[] => [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: Float32Array.from([0, 1, 0]) }];

export function input(p: number, width = 16): Tensor[] {
  const data = new Float32Array(width);
  data[0] = p;
  return [{ name: 'input', datatype: 'FP32', shape: [1, width], data }];
}

export function openTestOutbox(): Outbox {
  const db = openAgentDatabase(tempDir('flotilla-escalation-'));
  onTestFinished(() => {
    db.close();
  });
  return new Outbox(db, { maxEntries: 1000, maxBytes: 16 * 1024 * 1024 });
}

/** A cloud client and an escalator over a scripted local model, closed when the test ends. */
export function makeEscalator(
  policy: EscalationPolicy,
  routes: EscalationRoute[],
  opts: { client?: CloudClientOptions; escalator?: Partial<EscalatorOptions> } = {},
): { escalator: Escalator; cloud: CloudClient; local: ScriptedLocal } {
  const cloud = new CloudClient({ probeIntervalMs: 0, ...opts.client });
  onTestFinished(() => cloud.close());
  const local = new ScriptedLocal();
  const escalator = new Escalator({ local, cloud, ...opts.escalator });
  escalator.configure({ digits: { policy, routes } });
  return { escalator, cloud, local };
}

/** Lets the deferred hard-example write run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
