import { decodeErrorBody, decodeInferResponse, encodeInferRequest, HEADER_LENGTH_HEADER, type DecodeLimits } from '@flotilla/kserve';
import { FlotillaError, type EscalationRoute } from '@flotilla/protocol';
import { Agent, request, type Dispatcher } from 'undici';
import type { Tensor } from '../inference/types.ts';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/timers.ts';
import { EndpointState, pickEndpoint, type EndpointStatus } from './endpoint-state.ts';

export interface CloudClientOptions {
  timers?: Timers;
  /** Per-endpoint circuit breaker: failures in a row that open it (default 3), open time (default 5,000 ms). */
  breaker?: { failureThreshold?: number; openMs?: number };
  /**
   * Longest one attempt may take. Default: the whole remaining budget when no other endpoint is
   * left to try, else half of it, so one silent endpoint cannot use up the time a failover needs.
   */
  attemptTimeoutMs?: number;
  /** How often endpoints with an open circuit are probed at `/v2/health/ready` (default 2,000 ms; 0: never). */
  probeIntervalMs?: number;
  /** Keep-alive connections per endpoint (default 16). */
  connections?: number;
  /** Bring your own undici dispatcher (it is not closed by the client). */
  dispatcher?: Dispatcher;
  /** Codec limits for decoding answers. */
  limits?: Partial<DecodeLimits>;
}

export interface CloudInferRequest {
  /** Model name at the pools. */
  model: string;
  inputs: readonly Tensor[];
  outputs?: readonly string[];
  /** Pools in preference order (from the desired state). */
  routes: readonly EscalationRoute[];
  /** Idempotency id: KServe `id` and `Idempotency-Key`, the same on every retry. */
  requestId: string;
  /** Absolute time on the client's clock by which an answer must be in hand. */
  deadline: number;
  /**
   * Lets the final attempt (no other endpoint left to try) run past `deadline` until this time, for
   * a late answer. The endpoint is still judged at `deadline` as if the attempt had timed out there,
   * so circuits open as they would without it; a late answer only updates the latency figures.
   */
  lateDeadline?: number;
  /** The caller gave up (its client hung up). */
  signal?: AbortSignal;
}

export interface CloudAnswer {
  outputs: Tensor[];
  model: string;
  version: string | undefined;
  pool: string;
  endpoint: string;
  /** Requests sent for this answer, the successful one included. */
  attempts: number;
}

type AttemptOutcome =
  | { kind: 'ok'; answer: Omit<CloudAnswer, 'pool' | 'attempts'> }
  | { kind: 'next-endpoint'; error: FlotillaError }
  | { kind: 'next-pool'; error: FlotillaError }
  | { kind: 'stop'; error: FlotillaError };

const CLIENT_ERRORS = new Set([400, 413, 422]);
const PROBE_TIMEOUT_MS = 1_000;

/**
 * KServe v2 over HTTP to cloud pools, binary tensor extension both ways, keep-alive connections.
 * One request walks the routes in order: within a pool the least-loaded healthy endpoint first,
 * then the next pool; it retries only while its deadline leaves time, and always under one
 * idempotency id, so a pool that got a retried request twice can answer it once.
 */
export class CloudClient {
  readonly #timers: Timers;
  readonly #opts: CloudClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #endpoints = new Map<string, EndpointState>();
  #rotation = 0;
  #probeTimer: TimerHandle | undefined;
  #probing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: CloudClientOptions = {}) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
    this.#ownsDispatcher = !opts.dispatcher;
    this.#dispatcher = opts.dispatcher ?? new Agent({ connections: opts.connections ?? 16, keepAliveTimeout: 30_000, pipelining: 1 });
  }

  /** Starts the periodic probe of endpoints whose circuit is open. */
  start(): void {
    const every = this.#opts.probeIntervalMs ?? 2_000;
    if (every <= 0 || this.#probeTimer || this.#closing) return;
    const tick = (): void => {
      this.#probeTimer = undefined;
      void this.probe().finally(() => {
        if (!this.#closing) {
          this.#probeTimer = this.#timers.setTimeout(tick, every);
          this.#probeTimer.unref?.();
        }
      });
    };
    this.#probeTimer = this.#timers.setTimeout(tick, every);
    this.#probeTimer.unref?.();
  }

  /** Health of every endpoint seen so far. */
  endpoints(): EndpointStatus[] {
    return [...this.#endpoints.values()].map((e) => ({ url: e.url, state: e.breaker.state, inflight: e.inflight, latencyMs: e.latencyMs, successes: e.successes, failures: e.failures }));
  }

  /** Asks every endpoint with an open circuit whether it is ready; a ready one gets a trial request early. */
  probe(): Promise<void> {
    this.#probing ??= (async () => {
      const open = [...this.#endpoints.values()].filter((e) => e.breaker.state === 'open');
      await Promise.all(
        open.map(async (e) => {
          const ok = await this.#ready(e.url);
          if (ok) e.breaker.probeSucceeded();
        }),
      );
    })().finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  async infer(req: CloudInferRequest): Promise<CloudAnswer> {
    if (this.#closing) throw new FlotillaError('FLT_ESCALATION_CLOUD_UNAVAILABLE', 'the cloud client is closed');
    if (req.routes.length === 0) throw new FlotillaError('FLT_ESCALATION_NO_ROUTE', `no pool serves ${req.model}`);
    const encoded = encodeInferRequest(
      { id: req.requestId, inputs: req.inputs, binaryOutput: true, ...(req.outputs && { outputs: req.outputs.map((name) => ({ name })) }) },
      { binaryInputs: true },
    );
    const headers: Record<string, string> = { 'content-type': encoded.contentType, 'idempotency-key': req.requestId };
    if (encoded.headerLength !== undefined) headers[HEADER_LENGTH_HEADER] = String(encoded.headerLength);
    const body = encoded.body;
    const path = `/v2/models/${encodeURIComponent(req.model)}/infer`;
    const states = req.routes.map((r) => r.endpoints.map((url) => this.#endpoint(url)));
    const tried = new Set<string>();
    let attempts = 0;
    let lastError: FlotillaError | undefined;
    for (let r = 0; r < req.routes.length; r++) {
      const route = req.routes[r] as EscalationRoute;
      const pool = states[r] as EndpointState[];
      for (;;) {
        if (req.signal?.aborted) throw req.signal.reason;
        const remaining = req.deadline - this.#timers.now();
        if (remaining <= 0) throw this.#budgetError(req, attempts, lastError);
        const ep = pickEndpoint(pool, tried, this.#rotation++);
        if (!ep) break;
        tried.add(ep.url);
        if (!ep.breaker.tryAcquire()) continue;
        attempts++;
        const others = states.slice(r).some((p) => p.some((e) => !tried.has(e.url) && e.breaker.available()));
        const runsLate = !others && req.lateDeadline !== undefined && req.lateDeadline > req.deadline && this.#opts.attemptTimeoutMs === undefined;
        const timeoutMs = runsLate
          ? (req.lateDeadline as number) - this.#timers.now()
          : Math.min(remaining, this.#opts.attemptTimeoutMs ?? (others ? Math.max(1, Math.floor(remaining / 2)) : remaining));
        const outcome = await this.#attempt(ep, path, body, headers, timeoutMs, req, runsLate ? remaining : undefined);
        if (outcome.kind === 'ok') return { ...outcome.answer, pool: route.pool, attempts };
        lastError = outcome.error;
        if (outcome.kind === 'stop') throw outcome.error;
        if (outcome.kind === 'next-pool') break;
      }
    }
    if (this.#timers.now() >= req.deadline) throw this.#budgetError(req, attempts, lastError);
    throw lastError ?? new FlotillaError('FLT_ESCALATION_CLOUD_UNAVAILABLE', `every endpoint serving ${req.model} has its circuit open`, { attempts });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#probeTimer) this.#timers.clearTimeout(this.#probeTimer);
      this.#probeTimer = undefined;
      await this.#probing;
      if (this.#ownsDispatcher) await this.#dispatcher.destroy();
    })();
    return this.#closing;
  }

  #endpoint(url: string): EndpointState {
    const key = url.replace(/\/+$/, '');
    let e = this.#endpoints.get(key);
    if (!e) {
      e = new EndpointState(key, { ...this.#opts.breaker, now: () => this.#timers.now() });
      this.#endpoints.set(key, e);
    }
    return e;
  }

  #budgetError(req: CloudInferRequest, attempts: number, last: FlotillaError | undefined): FlotillaError {
    return new FlotillaError('FLT_ESCALATION_BUDGET_EXCEEDED', `no answer for ${req.model} within the time budget`, { attempts, ...(last && { last: last.code }) });
  }

  /** `overrunMs`: when the attempt may run late, the time after which the endpoint is judged failed all the same. */
  async #attempt(ep: EndpointState, path: string, body: string | Uint8Array, headers: Record<string, string>, timeoutMs: number, req: CloudInferRequest, overrunMs?: number): Promise<AttemptOutcome> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = this.#timers.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    // Once past the budget the endpoint is judged (a failure, freeing a half-open trial) and never again.
    let overran = false;
    const overrunTimer =
      overrunMs === undefined
        ? undefined
        : this.#timers.setTimeout(() => {
            overran = true;
            ep.recordFailure();
          }, overrunMs);
    const onCallerAbort = (): void => controller.abort();
    req.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const started = this.#timers.now();
    ep.inflight++;
    try {
      const res = await request(`${ep.url}${path}`, { method: 'POST', dispatcher: this.#dispatcher, headers, body, signal: controller.signal });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode === 200) {
        try {
          const decoded = decodeInferResponse(bytes, { headerLength: res.headers[HEADER_LENGTH_HEADER] as string | undefined, limits: this.#opts.limits });
          const missing = req.outputs?.find((n) => !decoded.outputs.some((o) => o.name === n));
          if (decoded.outputs.length === 0 || missing !== undefined) throw new Error(`answer lacks ${missing ?? 'outputs'}`);
          if (overran) ep.recordLateSuccess(this.#timers.now() - started);
          else ep.recordSuccess(this.#timers.now() - started);
          return { kind: 'ok', answer: { outputs: decoded.outputs, model: decoded.model_name, version: decoded.model_version, endpoint: ep.url } };
        } catch (err) {
          if (!overran) ep.recordFailure();
          return { kind: 'next-endpoint', error: new FlotillaError('FLT_ESCALATION_BAD_ANSWER', `${ep.url}: ${(err as Error).message}`, { endpoint: ep.url }) };
        }
      }
      const message = decodeErrorBody(bytes)?.error ?? `HTTP ${res.statusCode}`;
      const details = { endpoint: ep.url, status: res.statusCode };
      if (CLIENT_ERRORS.has(res.statusCode)) {
        // The endpoint is alive and judged the request itself: another pool would judge it the same.
        if (overran) ep.recordLateSuccess(this.#timers.now() - started);
        else ep.recordSuccess(this.#timers.now() - started);
        return { kind: 'stop', error: new FlotillaError('FLT_ESCALATION_CLOUD_REFUSED', `${ep.url}: ${message}`, details) };
      }
      if (res.statusCode === 404) {
        if (!overran) ep.breaker.success();
        return { kind: 'next-pool', error: new FlotillaError('FLT_ESCALATION_CLOUD_REFUSED', `${ep.url}: ${message}`, details) };
      }
      if (res.statusCode === 429) {
        if (!overran) ep.breaker.release();
        return { kind: 'next-endpoint', error: new FlotillaError('FLT_ESCALATION_CLOUD_UNAVAILABLE', `${ep.url}: busy (${message})`, details) };
      }
      if (!overran) ep.recordFailure();
      return { kind: 'next-endpoint', error: new FlotillaError('FLT_ESCALATION_CLOUD_UNAVAILABLE', `${ep.url}: ${message}`, details) };
    } catch (err) {
      if (req.signal?.aborted && !timedOut) {
        if (!overran) ep.breaker.release();
        throw req.signal.reason;
      }
      if (!overran) ep.recordFailure();
      if (timedOut) return { kind: 'next-endpoint', error: new FlotillaError('FLT_ESCALATION_BUDGET_EXCEEDED', `${ep.url}: no answer within ${timeoutMs} ms`, { endpoint: ep.url }) };
      const code = (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code;
      return { kind: 'next-endpoint', error: new FlotillaError('FLT_ESCALATION_CLOUD_UNAVAILABLE', `${ep.url}: ${code ?? (err as Error).message}`, { endpoint: ep.url, ...(code && { cause: code }) }) };
    } finally {
      ep.inflight--;
      this.#timers.clearTimeout(timer);
      if (overrunTimer) this.#timers.clearTimeout(overrunTimer);
      req.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async #ready(url: string): Promise<boolean> {
    const controller = new AbortController();
    const timer = this.#timers.setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
    try {
      const res = await request(`${url}/v2/health/ready`, { method: 'GET', dispatcher: this.#dispatcher, signal: controller.signal });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    } finally {
      this.#timers.clearTimeout(timer);
    }
  }
}
