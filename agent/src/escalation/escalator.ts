import { randomUUID } from 'node:crypto';
import { FlotillaError, type ModelEscalation } from '@flotilla/protocol';
import type { Logger } from 'pino';
import type { Tensor } from '../inference/types.ts';
import type { LocalInference, LocalInferResult, LocalModelStatus } from '../local-api/local-inference.ts';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/timers.ts';
import type { CloudAnswer, CloudClient } from './cloud-client.ts';
import { HARD_EXAMPLE_EVENT, hardExampleData, MAX_EXAMPLE_INPUT_BYTES, rawInput, type EnqueueEvent } from './hard-example.ts';
import type { InputSpool } from './input-spool.ts';
import { tensorBytes } from './policy.ts';
import type { EscalationMetrics } from './escalation-metrics.ts';
import { DEFAULT_BUDGET_MS, decideAfter, decideBefore, type AnsweredBy, type Decision, type EscalationPolicy, type EscalationReason, type Random } from './policy.ts';

/** The device's own inference; `noteEscalation` counts an escalation for its A/B arm (InferenceService has it). */
export type EscalatorLocal = LocalInference & { noteEscalation?(model: string, version: string): void };

export interface EscalatorOptions {
  /** The device's own inference (the agent's InferenceService). */
  local: EscalatorLocal;
  cloud: CloudClient;
  /** Where hard examples go: the durable outbox's enqueue. Without it none are kept. */
  enqueueEvent?: EnqueueEvent;
  timers?: Timers;
  /** The audit draw (default Math.random). */
  random?: Random;
  /** Idempotency ids (default random UUIDs). */
  newRequestId?: () => string;
  /**
   * Kept back from the budget for answering with the local result after the cloud gave up: covers
   * timer lateness on a busy device and the fallback path itself (default 10 ms).
   */
  fallbackReserveMs?: number;
  /**
   * Late cloud answers: a cloud request still running when its budget expires goes on (its answer
   * is `edge-fallback` all the same) for up to `windowMs` more (default 30,000; 0: off), and a late
   * answer is sent up as the kept hard example again with `late: true` and the cloud output, once.
   * At most `maxPending` run late at a time (default 8): past that, a request is cut at its budget.
   */
  lateAnswers?: { windowMs?: number; maxPending?: number };
  logger?: Pick<Logger, 'warn'>;
  /** Counts escalations for Prometheus (`flotilla_agent_escalations_total`). */
  metrics?: EscalationMetrics;
  /**
   * Inputs too large for an event: spooled durably before their event is enqueued, then uploaded
   * over HTTPS by the uploader (`kick()` is called after each). Without it they travel as before:
   * left out, with their size in `inputOmittedBytes`.
   */
  largeInputs?: { spool: InputSpool; uploader?: { kick(): unknown } };
}

/** A local-API answer that also says where it was answered and why. */
export interface EscalatedResult extends LocalInferResult {
  answeredBy: AnsweredBy;
  reason: EscalationReason;
  /** Idempotency id of the cloud request, when there was one. */
  requestId?: string;
  /** Why the cloud did not answer, for `edge-fallback`. */
  error?: string;
  /** KServe response parameters telling the caller the above. */
  parameters: Record<string, string | number | boolean>;
}

export interface EscalatorStats {
  answered: Record<AnsweredBy, number>;
  examplesKept: number;
  examplesLost: number;
  /** Late cloud answers sent up with their hard example. */
  lateAnswers: number;
  /** Requests that ran past their budget and got no answer in the late window either (or were cut: too many pending). */
  lateMissed: number;
  /** Requests running past their budget now. */
  latePending: number;
}

type InferOpts = { version?: string; outputs?: readonly string[]; signal?: AbortSignal; transferInputs?: boolean; stickyKey?: (name: string) => string | undefined };

/**
 * Decides, per request, whether the edge answers or a cloud pool does, under the model's policy
 * from the desired state. It is a `LocalInference`, so the local KServe API serves through it
 * unchanged. A request sent to the cloud that gets no answer in its budget is answered with the
 * local result, marked `edge-fallback`, and kept as a hard example in the durable outbox.
 */
export class Escalator implements LocalInference {
  readonly #local: EscalatorLocal;
  readonly #cloud: CloudClient;
  readonly #enqueue: EnqueueEvent | undefined;
  readonly #timers: Timers;
  readonly #random: Random;
  readonly #newId: () => string;
  readonly #reserve: number;
  readonly #logger: Pick<Logger, 'warn'> | undefined;
  readonly #lateWindowMs: number;
  readonly #maxLate: number;
  readonly #metrics: EscalationMetrics | undefined;
  readonly #largeInputs: EscalatorOptions['largeInputs'];
  #config = new Map<string, ModelEscalation>();
  readonly #stats: EscalatorStats = { answered: { edge: 0, cloud: 0, 'edge-fallback': 0 }, examplesKept: 0, examplesLost: 0, lateAnswers: 0, lateMissed: 0, latePending: 0 };
  #closed = false;

  constructor(opts: EscalatorOptions) {
    this.#local = opts.local;
    this.#cloud = opts.cloud;
    this.#enqueue = opts.enqueueEvent;
    this.#timers = opts.timers ?? systemTimers;
    this.#random = opts.random ?? Math.random;
    this.#newId = opts.newRequestId ?? randomUUID;
    this.#reserve = opts.fallbackReserveMs ?? 10;
    this.#logger = opts.logger;
    this.#lateWindowMs = opts.lateAnswers?.windowMs ?? 30_000;
    this.#maxLate = opts.lateAnswers?.maxPending ?? 8;
    this.#metrics = opts.metrics;
    this.#largeInputs = opts.largeInputs;
  }

  /** Takes the `escalation` section of a newly applied desired state (absent: escalate nothing). */
  configure(escalation: Readonly<Record<string, ModelEscalation>> | undefined): void {
    this.#config = new Map(Object.entries(escalation ?? {}));
  }

  policyFor(model: string): ModelEscalation | undefined {
    return this.#config.get(model);
  }

  status(): readonly LocalModelStatus[] {
    return this.#local.status();
  }

  /** A model under an escalation policy may wait on the cloud; otherwise the local side decides. */
  cancellable(model: string): boolean {
    const cfg = this.#config.get(model);
    if (cfg && cfg.policy.mode !== 'always-local') return true;
    return this.#local.cancellable?.(model) ?? true;
  }

  stats(): EscalatorStats {
    return { ...this.#stats, answered: { ...this.#stats.answered } };
  }

  async infer(model: string, inputs: readonly Tensor[], opts: InferOpts = {}): Promise<EscalatedResult> {
    if (this.#closed) throw new FlotillaError('FLT_AGENT_CLOSED');
    const started = this.#timers.now();
    const cfg = this.#config.get(model);
    if (!cfg || cfg.policy.mode === 'always-local') {
      const local = await this.#local.infer(model, inputs, opts);
      return this.#answer(local, 'edge', { policy: cfg ? 'always-local' : 'no-policy' });
    }
    const policy = cfg.policy;
    const deadline = started + (policy.budgetMs ?? DEFAULT_BUDGET_MS) - this.#reserve;
    // Inputs stay with this request: the cloud call and the hard example need them after the local run.
    // The sticky key goes along so an A/B split keeps each caller on its arm under a policy too.
    const localOpts: InferOpts = {
      ...(opts.version !== undefined && { version: opts.version }),
      ...(opts.signal && { signal: opts.signal }),
      ...(opts.stickyKey && { stickyKey: opts.stickyKey }),
    };

    const before = decideBefore(policy, inputs);
    if (before?.escalate) {
      // Cloud first (always-cloud, or an input the edge should not take); the edge only as fallback.
      const requestId = this.#newId();
      const call = this.#cloudCall(model, cfg, policy, inputs, opts, requestId, deadline);
      try {
        const cloud = await call.answer;
        const version = this.#activeVersion(model);
        const result = this.#answer(this.#fromCloud(model, cloud), 'cloud', before.reason, { requestId, cloud });
        if (before.reason.policy !== 'always-cloud') this.#keep(policy, { model, version, inputs, edge: [], cloud, decision: before, requestId, answeredBy: 'cloud' });
        return result;
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        const local = await this.#local.infer(model, inputs, localOpts);
        const code = codeOf(err);
        const example = { model, version: local.version, inputs, edge: local.outputs, decision: before, requestId, answeredBy: 'edge-fallback' as const, error: code, at: this.#timers.now() };
        this.#keep(policy, example);
        this.#awaitLate(policy, call, example);
        return this.#answer(filterOutputs(local, opts.outputs), 'edge-fallback', before.reason, { requestId, error: code });
      }
    }

    const local = await this.#local.infer(model, inputs, localOpts);
    const decision = decideAfter(policy, local.outputs, this.#random);
    if (!decision.escalate) return this.#answer(filterOutputs(local, opts.outputs), 'edge', decision.reason);
    // The version that answered locally sent this one on: its A/B arm's escalation rate counts it.
    this.#local.noteEscalation?.(model, local.version);
    const requestId = this.#newId();
    const call = this.#cloudCall(model, cfg, policy, inputs, opts, requestId, deadline);
    try {
      const cloud = await call.answer;
      this.#keep(policy, { model, version: local.version, inputs, edge: local.outputs, cloud, decision, requestId, answeredBy: 'cloud' });
      return this.#answer({ ...this.#fromCloud(model, cloud), provider: local.provider }, 'cloud', decision.reason, { requestId, cloud });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const code = codeOf(err);
      const example = { model, version: local.version, inputs, edge: local.outputs, decision, requestId, answeredBy: 'edge-fallback' as const, error: code, at: this.#timers.now() };
      this.#keep(policy, example);
      this.#awaitLate(policy, call, example);
      return this.#answer(filterOutputs(local, opts.outputs), 'edge-fallback', decision.reason, { requestId, error: code });
    }
  }

  /** Stops escalating; the cloud client has its own owner. Safe to call twice. */
  close(): void {
    this.#closed = true;
  }

  /**
   * The cloud call, raced against the deadline: the answer never waits for an aborted request to
   * unwind. The call itself is not aborted at the deadline: its own attempt timer fires then and
   * counts the failure against the endpoint, or, when late answers are kept for this policy, its
   * final attempt goes on for the late window (`call`, which `#awaitLate` follows or cuts).
   */
  #cloudCall(
    model: string,
    cfg: ModelEscalation,
    policy: EscalationPolicy,
    inputs: readonly Tensor[],
    opts: InferOpts,
    requestId: string,
    deadline: number,
  ): { answer: Promise<CloudAnswer>; call: Promise<CloudAnswer>; cut: AbortController | undefined } {
    const cut = this.#lateWanted(policy) ? new AbortController() : undefined;
    const signal = cut ? (opts.signal ? AbortSignal.any([opts.signal, cut.signal]) : cut.signal) : opts.signal;
    const call = this.#cloud.infer({
      model: policy.cloudModel ?? model,
      inputs,
      routes: cfg.routes,
      requestId,
      deadline,
      ...(cut && { lateDeadline: deadline + this.#lateWindowMs }),
      ...(opts.outputs && { outputs: opts.outputs }),
      ...(signal && { signal }),
    });
    let timer: TimerHandle | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = this.#timers.setTimeout(() => reject(new FlotillaError('FLT_ESCALATION_BUDGET_EXCEEDED', `no answer for ${model} within the time budget`)), Math.max(0, deadline - this.#timers.now()));
    });
    call.catch(() => undefined);
    expired.catch(() => undefined);
    const answer = Promise.race([call, expired]).finally(() => {
      if (timer) this.#timers.clearTimeout(timer);
    });
    return { answer, call, cut };
  }

  /** Late answers matter only where the example they would label is kept. */
  #lateWanted(policy: EscalationPolicy): boolean {
    return this.#lateWindowMs > 0 && this.#enqueue !== undefined && (policy.keepExamples ?? 'all') !== 'none';
  }

  /**
   * Follows a cloud call that missed its budget: its answer, if one comes in the late window, goes
   * up as the same hard example (same request id and time) with the cloud output and `late: true`,
   * exactly once. Past `maxPending` such calls, or for a call that failed for another reason, it is
   * cut now.
   */
  #awaitLate(policy: EscalationPolicy, call: { call: Promise<CloudAnswer>; cut: AbortController | undefined }, ex: KeptExample): void {
    const cut = call.cut;
    if (!cut || ex.error !== 'FLT_ESCALATION_BUDGET_EXCEEDED') {
      cut?.abort();
      return;
    }
    if (this.#stats.latePending >= this.#maxLate || this.#closed) {
      cut.abort();
      this.#stats.lateMissed++;
      return;
    }
    this.#stats.latePending++;
    call.call.then(
      (cloud) => {
        this.#stats.latePending--;
        if (this.#closed) return;
        this.#stats.lateAnswers++;
        this.#keep(policy, { ...ex, cloud, late: true, cloudAnsweredAt: this.#timers.now() });
      },
      () => {
        this.#stats.latePending--;
        this.#stats.lateMissed++;
      },
    );
  }

  #fromCloud(model: string, cloud: CloudAnswer): LocalInferResult {
    return { outputs: cloud.outputs, model, version: cloud.version ?? cloud.model, provider: 'triton', latencyMs: 0 };
  }

  #answer(result: LocalInferResult, answeredBy: AnsweredBy, reason: EscalationReason, extra: { requestId?: string; error?: string; cloud?: CloudAnswer } = {}): EscalatedResult {
    this.#stats.answered[answeredBy]++;
    this.#metrics?.answered(result.model, result.version, answeredBy);
    const parameters: Record<string, string | number | boolean> = { flotilla_answered_by: answeredBy, flotilla_policy: reason.policy };
    if (reason.value !== undefined) parameters.flotilla_value = reason.value;
    if (reason.threshold !== undefined) parameters.flotilla_threshold = reason.threshold;
    if (extra.requestId) parameters.flotilla_request_id = extra.requestId;
    if (extra.error) parameters.flotilla_error = extra.error;
    if (extra.cloud) parameters.flotilla_pool = extra.cloud.pool;
    return {
      ...result,
      answeredBy,
      reason,
      ...(extra.requestId && { requestId: extra.requestId }),
      ...(extra.error && { error: extra.error }),
      parameters,
    };
  }

  #activeVersion(model: string): string {
    return this.#local.status().find((s) => s.model === model)?.active?.version ?? 'unknown';
  }

  /**
   * Keeps a hard example for upload. The outbox commits synchronously to SQLite, so this runs after
   * the answer is on its way (a crash in between loses that one example, never an answer).
   */
  #keep(policy: EscalationPolicy, ex: KeptExample): void {
    const keep = policy.keepExamples ?? 'all';
    if (!this.#enqueue || keep === 'none' || (keep === 'fallback' && ex.answeredBy !== 'edge-fallback')) return;
    const at = ex.at ?? this.#timers.now();
    const enqueue = this.#enqueue;
    const write = (): void => {
      let spooled = false;
      try {
        const upload = this.#spoolInput(ex);
        spooled = upload?.spooled ?? false;
        const data = hardExampleData({
          model: ex.model,
          version: ex.version,
          ...(policy.cloudModel && { cloudModel: policy.cloudModel }),
          ...(ex.cloud?.version && { cloudVersion: ex.cloud.version }),
          answeredBy: ex.answeredBy,
          reason: ex.decision.reason,
          requestId: ex.requestId,
          ...(ex.error && { error: ex.error }),
          input: ex.inputs,
          edgeOutput: ex.edge,
          ...(ex.cloud && { cloudOutput: ex.cloud.outputs }),
          at,
          ...(ex.late && { late: true, cloudAnsweredAt: ex.cloudAnsweredAt }),
        }, MAX_EXAMPLE_INPUT_BYTES, upload?.raw.upload);
        const result = enqueue(HARD_EXAMPLE_EVENT, data as unknown as Record<string, unknown>, { priority: 'low' }) as { stored?: boolean } | undefined;
        // The outbox dropped the event at once (full of higher priorities): its input has no one to wait for.
        if (spooled && result?.stored === false) this.#largeInputs?.spool.remove(ex.requestId);
        else if (upload) this.#largeInputs?.uploader?.kick();
        this.#stats.examplesKept++;
      } catch (err) {
        if (spooled) this.#largeInputs?.spool.remove(ex.requestId);
        this.#stats.examplesLost++;
        this.#logger?.warn({ err, model: ex.model }, 'hard example not kept');
      }
    };
    // Queued like the example it completes, so the two reach the outbox in order.
    setImmediate(write);
  }

  /**
   * Spools an input too large for the event (before the event is enqueued, so the event never
   * refers to bytes a crash could lose). A late answer refers to the input its example spooled.
   * Undefined when the input fits the event, has BYTES tensors, or the spool is full.
   */
  #spoolInput(ex: KeptExample): { raw: NonNullable<ReturnType<typeof rawInput>>; spooled: boolean } | undefined {
    const large = this.#largeInputs;
    if (!large || tensorBytes(ex.inputs) <= MAX_EXAMPLE_INPUT_BYTES) return undefined;
    const raw = rawInput(ex.inputs);
    if (!raw) return undefined;
    if (ex.late || large.spool.has(ex.requestId)) return { raw, spooled: false };
    return large.spool.put(ex.requestId, raw.data) ? { raw, spooled: true } : undefined;
  }
}

/** A hard example as the escalator keeps it; `at` is set for an edge-fallback, whose late answer reuses it. */
interface KeptExample {
  model: string;
  version: string;
  inputs: readonly Tensor[];
  edge: readonly Tensor[];
  cloud?: CloudAnswer;
  decision: Decision;
  requestId: string;
  answeredBy: AnsweredBy;
  error?: string;
  at?: number;
  late?: boolean;
  cloudAnsweredAt?: number;
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'FLT_INTERNAL';
}

function filterOutputs(result: LocalInferResult, names: readonly string[] | undefined): LocalInferResult {
  if (!names) return result;
  return { ...result, outputs: result.outputs.filter((o) => names.includes(o.name)) };
}
