import {
  DryRunResult,
  ErrorBody,
  FlotillaError,
  RolloutCommandBody,
  RolloutDeviceList,
  RolloutDeviceListQuery,
  RolloutEventList,
  RolloutEventQuery,
  RolloutIdParams,
  RolloutList,
  RolloutListQuery,
  RolloutSpec,
  RolloutView,
  type RolloutDeviceState,
  type RolloutStateName,
} from '@flotilla/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';
import { RolloutStreamHub, type StreamSink } from '../rollout-stream.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody };
const security = [{ bearer: [] }];
const tags = ['rollouts'];

/**
 * A spec the schema refuses (a threshold or limit out of range, an unknown field) answers the same
 * FLT_ROLLOUT_SPEC_INVALID as the rules the engine checks, naming the field, so clients see one code for a bad spec.
 */
function assertSpecValid(request: FastifyRequest): void {
  const err = request.validationError as (Error & { validation?: Array<{ instancePath?: string; message?: string }> }) | undefined;
  if (!err) return;
  const first = err.validation?.[0];
  throw new FlotillaError('FLT_ROLLOUT_SPEC_INVALID', `rollout spec does not match the schema: ${err.message}`, {
    field: first?.instancePath ?? '',
    problems: (err.validation ?? []).slice(0, 10).map((v) => ({ path: v.instancePath ?? '', message: v.message ?? '' })),
  });
}

function decodeCursor(cursor: string | undefined): string | undefined {
  return cursor ? Buffer.from(cursor, 'base64url').toString('utf8') : undefined;
}

function encodeCursor(value: string): string {
  return Buffer.from(value).toString('base64url');
}

/** `/v1/rollouts`: staged rollouts. Reads need viewer, changes operator; every change is audited by the engine in its own transaction. */
export function rolloutRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const viewer = requireRole(ctx.apiTokens, 'viewer');
  const operator = requireRole(ctx.apiTokens, 'operator');
  const engine = ctx.rollouts;

  app.post<{ Body: Static<typeof RolloutSpec> }>(
    '/v1/rollouts',
    { preHandler: operator, attachValidation: true, schema: { tags, summary: 'Start a staged rollout', security, body: RolloutSpec, response: { 201: RolloutView, ...errors } } },
    async (request, reply) => {
      assertSpecValid(request);
      return reply.status(201).send(engine.create(actorOf(request), request.body));
    },
  );

  app.post<{ Body: Static<typeof RolloutSpec> }>(
    '/v1/rollouts/dry-run',
    {
      preHandler: viewer,
      attachValidation: true,
      schema: { tags, summary: 'Preview cohorts, variants, conflicts and timing without starting anything', security, body: RolloutSpec, response: { 200: DryRunResult, ...errors } },
    },
    async (request) => {
      assertSpecValid(request);
      return engine.dryRun(request.body);
    },
  );

  app.get<{ Querystring: Static<typeof RolloutListQuery> }>(
    '/v1/rollouts',
    { preHandler: viewer, schema: { tags, summary: 'List rollouts, newest first', security, querystring: RolloutListQuery, response: { 200: RolloutList, ...errors } } },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 50;
      const raw = decodeCursor(q.cursor);
      let before: { createdAt: number; id: string } | undefined;
      if (raw !== undefined) {
        const [ts, id] = raw.split('/', 2);
        if (!ts || !id || !/^\d+$/.test(ts)) throw new FlotillaError('FLT_BAD_REQUEST', 'invalid cursor');
        before = { createdAt: Number(ts), id };
      }
      const rows = engine.list({ state: q.state as RolloutStateName | undefined, model: q.model, before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { items: page, nextCursor: rows.length > limit && last ? encodeCursor(`${last.createdAt}/${last.id}`) : null };
    },
  );

  app.get<{ Params: Static<typeof RolloutIdParams> }>(
    '/v1/rollouts/:id',
    { preHandler: viewer, schema: { tags, summary: 'One rollout with its per-stage funnel', security, params: RolloutIdParams, response: { 200: RolloutView, ...errors } } },
    async (request) => engine.get(request.params.id),
  );

  app.get<{ Params: Static<typeof RolloutIdParams>; Querystring: Static<typeof RolloutDeviceListQuery> }>(
    '/v1/rollouts/:id/devices',
    { preHandler: viewer, schema: { tags, summary: 'Devices of a rollout and their state, by id', security, params: RolloutIdParams, querystring: RolloutDeviceListQuery, response: { 200: RolloutDeviceList, ...errors } } },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 100;
      const rows = engine.devicesOf(request.params.id, { state: q.state as RolloutDeviceState | undefined, stage: q.stage, after: decodeCursor(q.cursor), limit: limit + 1 });
      const page = rows.slice(0, limit);
      return {
        items: page.map((d) => ({
          deviceId: d.device_id,
          stage: d.stage,
          state: d.state,
          attempts: d.attempts,
          fromVersion: d.from_version,
          variant: d.variant,
          notifiedAt: d.notified_at,
          healthySince: d.healthy_since,
          activateAfter: d.activate_after,
          deadlineAt: d.deadline_at,
          finishedAt: d.finished_at,
          error: d.error,
        })),
        nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.device_id) : null,
      };
    },
  );

  app.get<{ Params: Static<typeof RolloutIdParams>; Querystring: Static<typeof RolloutEventQuery> }>(
    '/v1/rollouts/:id/events',
    { preHandler: viewer, schema: { tags, summary: 'Rollout events in order (device events with devices=true)', security, params: RolloutIdParams, querystring: RolloutEventQuery, response: { 200: RolloutEventList, ...errors } } },
    async (request) => ({ items: engine.events(request.params.id, { afterId: request.query.afterId, limit: request.query.limit ?? 200, devices: request.query.devices }) }),
  );

  // One hub per server: it ends every stream before the HTTP server waits for its connections, so shutdown stays bounded.
  const hub = new RolloutStreamHub(engine);
  app.addHook('preClose', async () => hub.close());

  app.get<{ Params: Static<typeof RolloutIdParams> }>(
    '/v1/rollouts/:id/stream',
    {
      preHandler: viewer,
      schema: {
        tags,
        summary: 'Live progress as server-sent events: `progress` (the rollout with its funnel) on every change, `end` at a final state',
        security,
        params: RolloutIdParams,
        produces: ['text/event-stream'],
        response: errors,
      },
    },
    async (request, reply) => {
      // Unknown ids answer a plain 404 before the stream starts.
      engine.get(request.params.id, { funnel: false });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const sink: StreamSink = {
        send: (event, data) => {
          if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        },
        comment: (text) => {
          if (!res.writableEnded) res.write(`: ${text}\n\n`);
        },
        end: () => {
          if (!res.writableEnded) res.end();
        },
      };
      const detach = hub.open(request.params.id, sink);
      res.once('close', detach);
    },
  );

  const commands = {
    pause: (a, id, reason) => engine.pause(a, id, reason),
    resume: (a, id) => engine.resume(a, id),
    approve: (a, id) => engine.approve(a, id),
    cancel: (a, id, reason) => engine.cancel(a, id, reason),
    revert: (a, id, reason) => engine.revert(a, id, reason),
  } satisfies Record<string, (actor: ReturnType<typeof actorOf>, id: string, reason?: string) => unknown>;

  for (const [name, run] of Object.entries(commands)) {
    app.post<{ Params: Static<typeof RolloutIdParams>; Body: Static<typeof RolloutCommandBody> | undefined }>(
      `/v1/rollouts/:id/${name}`,
      {
        preHandler: operator,
        // The body (a reason) is optional: a bare POST is validated as an empty object.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: { tags, summary: `${name[0]!.toUpperCase()}${name.slice(1)} a rollout`, security, params: RolloutIdParams, body: RolloutCommandBody, response: { 200: RolloutView, ...errors } },
      },
      async (request) => run(actorOf(request), request.params.id, request.body?.reason),
    );
  }
}
