import { createHash } from 'node:crypto';
import { decodeInferRequest, encodeInferResponse, HEADER_LENGTH_HEADER, rowsOf, wantsBinaryOutput, type DecodeLimits, type InferRequest } from '@flotilla/kserve';
import { validateInputs } from '@flotilla/agent/inference';
import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyCache } from '../../idempotency/idempotency-cache.ts';
import { UNKNOWN_MODEL_LABEL, type PoolMetrics } from '../../metrics/pool-metrics.ts';
import type { ModelManager, ServedVersion } from '../../repository/model-manager.ts';
import type { PoolTimers } from '../../runtime/timers.ts';

interface InferParams {
  name: string;
  version?: string;
}

/** An answer ready to send, as kept by the idempotency cache. */
export interface EncodedAnswer {
  body: Buffer | string;
  contentType: string;
  headerLength: number | undefined;
}

export interface InferRouteOptions {
  models: ModelManager;
  metrics: PoolMetrics;
  cache: IdempotencyCache<EncodedAnswer>;
  useRequestId: boolean;
  requestTimeoutMs: number;
  limits: DecodeLimits;
  timers: PoolTimers;
}

const EMPTY = Buffer.alloc(0);
const IDEMPOTENCY_HEADER = 'idempotency-key';
const MAX_KEY_LENGTH = 256;

/** Which model served the request, for the status metric (set once the name resolved). */
const MODEL_LABEL = Symbol('flotilla.pool.model');
type Labeled = FastifyRequest & { [MODEL_LABEL]?: string };

/** The checks a request passes before it may join a batch, so a bad one never spoils a run. */
function admit(served: ServedVersion, request: InferRequest): string[] | undefined {
  let outputs: string[] | undefined;
  if (request.outputs) {
    const known = new Set(served.outputs.map((o) => o.name));
    for (const o of request.outputs) {
      if (!known.has(o.name)) throw new FlotillaError('FLT_KSERVE_UNKNOWN_OUTPUT', `${served.model} has no output ${o.name}`, { output: o.name });
    }
    outputs = request.outputs.map((o) => o.name);
  }
  validateInputs(served.inputs, request.inputs);
  if (served.batchable) {
    const rows = rowsOf(request.inputs[0] as { shape: number[] });
    for (const t of request.inputs) {
      if (rowsOf(t) !== rows) throw new FlotillaError('FLT_INFER_BAD_INPUT', 'every input must have the same number of rows (dim 0)', { input: t.name });
    }
    if (rows < 1 || rows > served.batching.maxBatchSize) {
      throw new FlotillaError('FLT_INFER_BAD_INPUT', `a request holds 1 to ${served.batching.maxBatchSize} rows, this one ${rows}`, { rows, maxBatchSize: served.batching.maxBatchSize });
    }
  }
  return outputs;
}

/** The request's `timeout` parameter (µs, as Triton reads it) may shorten the configured wait, never lengthen it. */
function timeoutOf(request: InferRequest, configured: number): number {
  const t = request.parameters?.timeout;
  if (t === undefined) return configured;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) throw new FlotillaError('FLT_BAD_REQUEST', 'parameters.timeout must be a whole number of microseconds');
  return t === 0 ? configured : Math.min(configured, t / 1000);
}

function idempotencyKey(req: FastifyRequest, request: InferRequest, useRequestId: boolean): { key: string; fromHeader: boolean } | undefined {
  const header = req.headers[IDEMPOTENCY_HEADER];
  if (header !== undefined) {
    const key = Array.isArray(header) ? header[0] : header;
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new FlotillaError('FLT_BAD_REQUEST', `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} characters`);
    }
    return { key, fromHeader: true };
  }
  if (useRequestId && request.id !== undefined && request.id.length > 0) return { key: request.id, fromHeader: false };
  return undefined;
}

function send(reply: FastifyReply, answer: EncodedAnswer): FastifyReply {
  reply.type(answer.contentType);
  if (answer.headerLength !== undefined) reply.header(HEADER_LENGTH_HEADER, answer.headerLength);
  return reply.send(answer.body);
}

/** `POST /v2/models/:name[/versions/:version]/infer`: JSON or binary extension in, the form asked for out. */
export function inferRoutes(app: FastifyInstance, opts: InferRouteOptions): void {
  const { models, metrics, cache, timers } = opts;

  const handler = async (req: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) => {
    const started = timers.now();
    const body = Buffer.isBuffer(req.body) ? req.body : EMPTY;
    const headerLength = req.headers[HEADER_LENGTH_HEADER] as string | undefined;
    const { name, version } = req.params;
    const served = models.resolve(name, version);
    (req as Labeled)[MODEL_LABEL] = served.model;
    const request = decodeInferRequest(body, { headerLength, limits: opts.limits });

    // A client that hangs up before its answer should not keep its place in the queue.
    const controller = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) controller.abort(new FlotillaError('FLT_BAD_REQUEST', 'the client closed the connection'));
    };

    const idem = cache.enabled ? idempotencyKey(req, request, opts.useRequestId) : undefined;
    const work = async (): Promise<EncodedAnswer> => {
      const outputs = admit(served, request);
      const result = await served.batcher.submit(request.inputs, {
        timeoutMs: timeoutOf(request, opts.requestTimeoutMs),
        // A keyed request keeps its place when its client hangs up: the client's retry will want its answer.
        ...(!idem && { signal: controller.signal }),
        ...(outputs && { outputs }),
      });
      const encoded = encodeInferResponse(
        { model_name: served.model, model_version: served.version, ...(request.id !== undefined && { id: request.id }), outputs: result },
        (n) => wantsBinaryOutput(request, n),
      );
      const out = encoded.body;
      return {
        body: typeof out === 'string' ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength),
        contentType: encoded.contentType,
        headerLength: encoded.headerLength,
      };
    };

    reply.raw.once('close', onClose);
    try {
      let answer: EncodedAnswer;
      if (!idem) {
        answer = await work();
      } else {
        // The whole body (and its framing) is the fingerprint: a retry must be byte-identical.
        const fingerprint = createHash('sha256').update(headerLength ?? '-').update('\n').update(body).digest('base64');
        const scope = `${served.model}\n${version ?? ''}\n${idem.key}`;
        const outcome = cache.run(scope, fingerprint, work);
        if (outcome.kind === 'mismatch') {
          if (idem.fromHeader) throw new FlotillaError('FLT_POOL_IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used for a different request body');
          // A body `id` is also a plain correlation id: a new body under an old id is a new request.
          answer = await work();
        } else {
          answer = await outcome.value;
          if (outcome.kind === 'replay') {
            metrics.replays.inc({ model: served.model });
            reply.header('idempotent-replayed', 'true');
          }
        }
      }
      metrics.requestDuration.observe({ model: served.model }, (timers.now() - started) / 1000);
      return send(reply, answer);
    } finally {
      reply.raw.off('close', onClose);
    }
  };

  const onResponse = async (req: FastifyRequest, reply: FastifyReply) => {
    metrics.requests.inc({ model: (req as Labeled)[MODEL_LABEL] ?? UNKNOWN_MODEL_LABEL, status: String(reply.statusCode) });
  };
  app.post<{ Params: InferParams }>('/v2/models/:name/infer', { onResponse }, handler);
  app.post<{ Params: InferParams }>('/v2/models/:name/versions/:version/infer', { onResponse }, handler);
}
