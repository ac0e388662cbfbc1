import {
  DesiredRequest,
  DeviceIdParams,
  DeviceList,
  DeviceListQuery,
  DeviceView,
  ErrorBody,
  FleetSummary,
  FlotillaError,
  LabelChange,
  PreauthorizeRequest,
  LABEL_KEY_PATTERN,
  LABEL_VALUE_PATTERN,
} from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { Type } from 'typebox';
import type { HttpContext } from '../context.ts';
import { actorOf, requireRole } from '../auth.ts';
import type { DeviceRecord } from '../../fleet/device-store.ts';

const labelKey = new RegExp(LABEL_KEY_PATTERN);
const labelValue = new RegExp(LABEL_VALUE_PATTERN);

export function toView(d: DeviceRecord): Static<typeof DeviceView> {
  return { ...d, inSync: d.desired !== null && d.reported !== null && d.reported.appliedGeneration === d.desired.generation };
}

function parseLabelSelectors(raw: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sel of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
    const eq = sel.indexOf('=');
    const k = sel.slice(0, eq);
    const v = sel.slice(eq + 1);
    if (eq < 1 || !labelKey.test(k) || !labelValue.test(v)) {
      throw new FlotillaError('FLT_BAD_REQUEST', `label selector must be key=value, got ${JSON.stringify(sel)}`);
    }
    out[k] = v;
  }
  return out;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const security = [{ bearer: [] }];

export function deviceRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const viewer = requireRole(ctx.apiTokens, 'viewer');
  const operator = requireRole(ctx.apiTokens, 'operator');

  app.get<{ Querystring: Static<typeof DeviceListQuery> }>(
    '/v1/devices',
    { preHandler: viewer, schema: { tags: ['devices'], summary: 'List devices with filters, by id, cursor-paginated', security, querystring: DeviceListQuery, response: { 200: DeviceList, ...errors } } },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 50;
      const after = q.cursor ? Buffer.from(q.cursor, 'base64url').toString('utf8') : undefined;
      if (q.version !== undefined && q.model === undefined) throw new FlotillaError('FLT_BAD_REQUEST', '`version` needs `model`');
      // One extra row tells whether another page exists without a COUNT.
      const rows = ctx.fleet.list({
        status: q.status as DeviceRecord['status'] | undefined,
        online: q.online,
        labels: parseLabelSelectors(q.label),
        model: q.model,
        version: q.version,
        after,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const nextCursor = rows.length > limit ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null;
      return { items: page.map(toView), nextCursor };
    },
  );

  app.get(
    '/v1/fleet/summary',
    { preHandler: viewer, schema: { tags: ['devices'], summary: 'Fleet counts: by status, online/offline, model versions and agent versions', security, response: { 200: FleetSummary, ...errors } } },
    async (): Promise<Static<typeof FleetSummary>> => {
      const byStatus: Record<string, number> = {};
      let total = 0;
      let online = 0;
      let offline = 0;
      for (const row of ctx.devices.countByStatus()) {
        byStatus[row.status] = (byStatus[row.status] ?? 0) + row.n;
        total += row.n;
        if (row.status === 'accepted') {
          if (row.online) online += row.n;
          else offline += row.n;
        }
      }
      const modelVersions = ctx.db
        .prepare(
          `SELECT m.key AS model, json_extract(m.value, '$.version') AS version, COUNT(*) AS devices
           FROM devices d, json_each(d.reported, '$.models') m
           WHERE d.status = 'accepted' AND d.reported IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2`,
        )
        .all() as Array<{ model: string; version: string | null; devices: number }>;
      const agentVersions = ctx.db
        .prepare(
          `SELECT json_extract(inventory, '$.agentVersion') AS version, COUNT(*) AS devices FROM devices
           WHERE status = 'accepted' AND inventory IS NOT NULL GROUP BY 1 ORDER BY 1`,
        )
        .all() as Array<{ version: string; devices: number }>;
      return { total, byStatus, online, offline, modelVersions, agentVersions };
    },
  );

  app.get<{ Params: Static<typeof DeviceIdParams> }>(
    '/v1/devices/:id',
    { preHandler: viewer, schema: { tags: ['devices'], summary: 'One device: inventory, labels, presence, desired and reported state', security, params: DeviceIdParams, response: { 200: DeviceView, ...errors } } },
    async (request) => toView(ctx.fleet.get(request.params.id)),
  );

  app.post<{ Body: Static<typeof PreauthorizeRequest> }>(
    '/v1/devices',
    { preHandler: operator, schema: { tags: ['devices'], summary: 'Pre-authorize a device id: it is accepted at its first enrollment', security, body: PreauthorizeRequest, response: { 201: DeviceView, ...errors } } },
    async (request, reply) => reply.status(201).send(toView(ctx.fleet.preauthorize(actorOf(request), request.body.id, request.body.labels ?? {}))),
  );

  for (const action of ['accept', 'reject', 'revoke'] as const) {
    app.post<{ Params: Static<typeof DeviceIdParams> }>(
      `/v1/devices/:id/${action}`,
      { preHandler: operator, schema: { tags: ['devices'], summary: `${action[0]!.toUpperCase()}${action.slice(1)} a device`, security, params: DeviceIdParams, response: { 200: DeviceView, ...errors } } },
      async (request) => toView(ctx.fleet.transition(actorOf(request), request.params.id, action)),
    );
  }

  app.delete<{ Params: Static<typeof DeviceIdParams> }>(
    '/v1/devices/:id',
    { preHandler: requireRole(ctx.apiTokens, 'admin'), schema: { tags: ['devices'], summary: 'Delete a device and its events', security, params: DeviceIdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      ctx.fleet.remove(actorOf(request), request.params.id);
      return reply.status(204).send();
    },
  );

  app.patch<{ Params: Static<typeof DeviceIdParams>; Body: Static<typeof LabelChange> }>(
    '/v1/devices/:id/labels',
    { preHandler: operator, schema: { tags: ['devices'], summary: 'Set and remove labels', security, params: DeviceIdParams, body: LabelChange, response: { 200: DeviceView, ...errors } } },
    async (request) => toView(ctx.fleet.setLabels(actorOf(request), request.params.id, request.body)),
  );

  app.put<{ Params: Static<typeof DeviceIdParams>; Body: Static<typeof DesiredRequest> }>(
    '/v1/devices/:id/desired',
    { preHandler: operator, schema: { tags: ['devices'], summary: 'Replace the desired state (new generation), sent to the device at once', security, params: DeviceIdParams, body: DesiredRequest, response: { 200: DeviceView, ...errors } } },
    async (request) => {
      await ctx.fleet.setDesired(actorOf(request), request.params.id, request.body);
      return toView(ctx.fleet.get(request.params.id));
    },
  );

  app.get<{ Params: Static<typeof DeviceIdParams>; Querystring: { limit?: number; afterSeq?: number; order?: 'asc' | 'desc' } }>(
    '/v1/devices/:id/events',
    {
      preHandler: viewer,
      schema: {
        tags: ['devices'],
        summary: 'Durable events a device reported, in sequence order',
        security,
        params: DeviceIdParams,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            afterSeq: Type.Optional(Type.Integer({ minimum: -1 })),
            /** `desc`: the most recent first (what a person looking at a device wants). */
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' })),
          },
          { additionalProperties: false },
        ),
        response: { ...errors },
      },
    },
    async (request) => {
      ctx.fleet.get(request.params.id);
      const order = request.query.order === 'desc' ? 'seq DESC, id DESC' : 'seq, id';
      const rows = ctx.db
        .prepare(`SELECT id, seq, kind, data, ts, received_at AS receivedAt FROM device_events WHERE device_id = ? AND seq > ? ORDER BY ${order} LIMIT ?`)
        .all(request.params.id, request.query.afterSeq ?? -1, request.query.limit ?? 100) as Array<{ data: string } & Record<string, unknown>>;
      return { items: rows.map((r) => ({ ...r, data: JSON.parse(r.data) as unknown })) };
    },
  );
}
