import { decodeInferRequest, encodeInferResponse, HEADER_LENGTH_HEADER, wantsBinaryOutput, type DecodeLimits } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LocalInference } from '../local-inference.ts';
import { findModel, findVersion } from './models.ts';

interface InferParams {
  name: string;
  version?: string;
}

const EMPTY = Buffer.alloc(0);

/** `POST /v2/models/:name[/versions/:version]/infer`, JSON or binary extension in, the form asked for out. */
export function inferRoutes(app: FastifyInstance, inference: LocalInference, limits: Partial<DecodeLimits>): void {
  const handler = async (req: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : EMPTY;
    const request = decodeInferRequest(body, { headerLength: req.headers[HEADER_LENGTH_HEADER] as string | undefined, limits });
    const { name, version } = req.params;
    let outputs: string[] | undefined;
    if (request.outputs) {
      // Only a request that names outputs pays for the metadata lookup.
      const v = findVersion(findModel(inference, name), version);
      const known = new Set(v?.outputs.map((o) => o.name));
      for (const o of request.outputs) {
        if (v && !known.has(o.name)) throw new FlotillaError('FLT_KSERVE_UNKNOWN_OUTPUT', `${name} has no output ${o.name}`, { output: o.name });
      }
      outputs = request.outputs.map((o) => o.name);
    }
    // A client that hangs up before its answer should not keep a cloud call or a sidecar busy.
    // (The response's 'close' is the one that means the connection went away; the request's fires
    // after its body.) Requests that cannot be called off once taken skip the signal's cost.
    const controller = inference.cancellable?.(name) === false ? undefined : new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) controller?.abort();
    };
    if (controller) reply.raw.once('close', onClose);
    try {
      // The decoded tensors are fresh arrays owned by this request, so they may move to a worker.
      const result = await inference.infer(name, request.inputs, {
        ...(version !== undefined && { version }),
        ...(outputs && { outputs }),
        ...(controller && { signal: controller.signal }),
        transferInputs: true,
        // An A/B split's sticky key: the header of that name, else the request parameter.
        stickyKey: (field) => {
          const h = req.headers[field];
          const p = request.parameters?.[field];
          return typeof h === 'string' ? h : typeof p === 'string' || typeof p === 'number' ? String(p) : undefined;
        },
      });
      // A model with a result cache says whether this answer came from it; one in an A/B split, which arm answered.
      let parameters = result.cache ? { ...result.parameters, flotilla_cache: result.cache } : result.parameters;
      if (result.arm) parameters = { ...parameters, flotilla_ab_arm: result.arm };
      const encoded = encodeInferResponse(
        { model_name: name, model_version: result.version, ...(request.id !== undefined && { id: request.id }), ...(parameters && { parameters }), outputs: result.outputs },
        (n) => wantsBinaryOutput(request, n),
      );
      reply.type(encoded.contentType);
      if (encoded.headerLength !== undefined) reply.header(HEADER_LENGTH_HEADER, encoded.headerLength);
      const out = encoded.body;
      return reply.send(typeof out === 'string' ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    } finally {
      if (controller) reply.raw.off('close', onClose);
    }
  };
  app.post<{ Params: InferParams }>('/v2/models/:name/infer', handler);
  app.post<{ Params: InferParams }>('/v2/models/:name/versions/:version/infer', handler);
}
