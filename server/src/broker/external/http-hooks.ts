/**
 * HTTP endpoints an external broker calls to authenticate devices and authorize their packets:
 *
 *   POST /v1/broker-hooks/emqx/authn   EMQX 5 HTTP authenticator  → {"result":"allow"|"deny","is_superuser":bool}
 *   POST /v1/broker-hooks/emqx/authz   EMQX 5 HTTP authorizer     → {"result":"allow"|"deny"}
 *   POST /v1/broker-hooks/vernemq      VerneMQ webhooks, dispatched on the `vernemq-hook` header
 *
 * Request templates and broker settings are in docs/external-broker.md. A refusal is always an
 * explicit deny with status 200: EMQX reads any other status as "ignore" and would move on down
 * its chain. The broker proves itself with the configured hook token.
 */
import { timingSafeEqual } from 'node:crypto';
import { FlotillaError, MAX_MQTT_PAYLOAD_BYTES } from '@flotilla/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HookDecision, HookPolicy } from './hook-decisions.ts';

export const HOOKS_PREFIX = '/v1/broker-hooks';
const PACKET_HEADER_ALLOWANCE = 1024;

export interface HttpHooksOptions {
  policy: HookPolicy;
  hookToken: string;
}

type Body = Record<string, unknown>;

/** Registers the hook routes on the server's HTTP app (call before it is ready). */
export async function registerHttpHooks(app: FastifyInstance, opts: HttpHooksOptions): Promise<void> {
  const token = Buffer.from(opts.hookToken);
  const { policy } = opts;

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => {
      if (!presentsToken(request, token)) throw new FlotillaError('FLT_UNAUTHENTICATED', 'broker hook token missing or wrong');
    });
    const routeOpts = { schema: { hide: true, body: { type: 'object' } } } as const;

    scope.post<{ Body: Body }>(`${HOOKS_PREFIX}/emqx/authn`, routeOpts, async (request) => {
      const b = request.body;
      const decision = await policy.connect({ clientId: str(b.clientid), username: optStr(b.username) }, optStr(b.password));
      return decision.allow ? { result: 'allow', is_superuser: decision.superuser } : { result: 'deny', is_superuser: false };
    });

    scope.post<{ Body: Body }>(`${HOOKS_PREFIX}/emqx/authz`, routeOpts, async (request) => {
      const b = request.body;
      const who = { clientId: str(b.clientid), username: optStr(b.username) };
      const topic = str(b.topic);
      const action = str(b.action);
      let decision: HookDecision;
      if (action === 'publish') decision = policy.publish(who, topic, bool(b.retain));
      else if (action === 'subscribe') decision = policy.subscribe(who, topic);
      else decision = { allow: false, code: 'FLT_MQTT_TOPIC_FORBIDDEN', detail: `unknown action ${JSON.stringify(action)}` };
      return { result: decision.allow ? 'allow' : 'deny' };
    });

    scope.post<{ Body: Body }>(`${HOOKS_PREFIX}/vernemq`, routeOpts, async (request, reply) => {
      const hook = request.headers['vernemq-hook'];
      const b = request.body;
      // A mountpoint prefixes every topic inside the broker; the policy is written for none.
      if (typeof b.mountpoint === 'string' && b.mountpoint !== '') return notAllowed();
      const who = { clientId: str(b.client_id), username: optStr(b.username) };
      switch (hook) {
        case 'auth_on_register':
        case 'auth_on_register_m5': {
          const decision = await policy.connect(who, optStr(b.password));
          if (!decision.allow) return notAllowed();
          // The broker enforces the payload limit the embedded broker applies.
          return { result: 'ok', modifiers: { max_message_size: MAX_MQTT_PAYLOAD_BYTES + PACKET_HEADER_ALLOWANCE } };
        }
        case 'auth_on_publish':
        case 'auth_on_publish_m5':
          return policy.publish(who, str(b.topic), bool(b.retain)).allow ? { result: 'ok' } : notAllowed();
        case 'auth_on_subscribe':
        case 'auth_on_subscribe_m5': {
          const refused = hook === 'auth_on_subscribe' ? 128 : 135;
          const topics = (Array.isArray(b.topics) ? b.topics : []).map((t) => {
            const entry = (t ?? {}) as Body;
            const filter = str(entry.topic);
            return { topic: filter, qos: policy.subscribe(who, filter).allow ? Number(entry.qos ?? 0) : refused };
          });
          return hook === 'auth_on_subscribe' ? { result: 'ok', topics } : { result: 'ok', modifiers: { topics } };
        }
        default:
          return reply.status(400).send({ result: { error: `unsupported hook ${JSON.stringify(hook)}` } });
      }
    });
  });
}

function notAllowed() {
  return { result: { error: 'not_allowed' } };
}

function presentsToken(request: FastifyRequest, token: Buffer): boolean {
  const header = request.headers.authorization;
  const query = (request.query as Record<string, unknown> | undefined)?.token;
  const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : typeof query === 'string' ? query : null;
  if (given === null) return false;
  const g = Buffer.from(given);
  return g.length === token.length && timingSafeEqual(g, token);
}

/** Brokers fill their templates with strings; anything else becomes '' and fails the policy. */
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function optStr(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** EMQX's `${retain}` arrives as "true"/"false" inside a JSON string template, VerneMQ's as a boolean. */
function bool(v: unknown): boolean {
  return v === true || v === 'true' || v === 1 || v === '1';
}
