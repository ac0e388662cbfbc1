/**
 * aedes hooks that apply the device policy. Each hook is one function shared by all connections;
 * per-connection state is limited to what the SessionTable holds.
 */
import { FlotillaError, parseDeviceTopic } from '@flotilla/protocol';
import type { ErrorCode, UpChannel } from '@flotilla/protocol';
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { CONNACK, checkConnect, checkPublish, checkSubscribe, mayForward } from './device-policy.ts';
import type { ConnectRefusal } from './device-policy.ts';
import type { FailureThrottle } from '../auth/failure-throttle.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { SessionTable } from './session-table.ts';
import type { BrokerEvents, DeviceAuthenticator } from './types.ts';

export interface HookContext {
  auth: DeviceAuthenticator;
  events: BrokerEvents;
  metrics: BrokerMetrics;
  logger: Logger;
  sessions: SessionTable;
  maxPayloadBytes: number;
  /** the aedes-registered client for an id (it may not be in the SessionTable yet) */
  registered(deviceId: string): Client | undefined;
  /** the source address of a client's connection; '' when left out */
  addressOf?(client: Client): string;
  /** failed-CONNECT throttling per address and device id; none when left out */
  throttle?: FailureThrottle;
  /** a client whose unsent outgoing bytes pass this is disconnected; no limit when left out */
  maxOutgoingBufferBytes?: number;
  /** closes a connection the broker drops on its own; client.close() when left out */
  shed?(client: Client): void;
}

type PolicyHooks = Required<
  Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward' | 'published'>
>;

const PASSED = Symbol('connect checks passed');

export function createPolicyHooks(ctx: HookContext): PolicyHooks & { reportViolation: HookContext['events']['policyViolation'] & {} } {
  const { auth, events, metrics, logger, sessions, maxPayloadBytes } = ctx;
  // Result of the checks preConnect ran on the raw CONNECT, read once by authenticate. preConnect
  // sees the packet as sent (aedes later replaces an empty client id with a generated one), while
  // only authenticate can answer with a CONNACK return code the client understands.
  const connectChecks = new WeakMap<Client, ConnectRefusal | typeof PASSED>();
  const { throttle, maxOutgoingBufferBytes } = ctx;
  const addressOf = (client: Client): string => ctx.addressOf?.(client) ?? '';
  const shed = (client: Client): void => (ctx.shed ? ctx.shed(client) : client.close());
  // Clients already being dropped for not reading: report once, forward nothing more.
  const shedding = new WeakSet<Client>();

  function reportViolation(deviceId: string | null, code: ErrorCode, detail: string): void {
    metrics.violation(code);
    logger.warn({ deviceId, code, detail }, 'mqtt policy violation');
    if (events.policyViolation) safely(logger, 'policyViolation', () => events.policyViolation?.(deviceId, code, detail));
  }

  function refuse(client: Client, refusal: ConnectRefusal, done: Parameters<PolicyHooks['authenticate']>[3]): void {
    metrics.connect('refused');
    // A missing or wrong credential is a guess; a malformed CONNECT (client id, will) is not.
    if (throttle && refusal.code === 'FLT_MQTT_AUTH_FAILED') throttle.failed(addressOf(client), client.id ? `device:${client.id}` : null);
    reportViolation(client.id ?? null, refusal.code, refusal.detail);
    done(authError(refusal.detail, refusal.returnCode), false);
  }

  return {
    reportViolation,

    preConnect(client, packet, callback) {
      const clientId = packet.clientId;
      const refusal = checkConnect(
        {
          clientId,
          username: packet.username,
          password: packet.password,
          will: packet.will,
          clientIdInUse: sessions.current(clientId) !== undefined || ctx.registered(clientId) !== undefined,
        },
        maxPayloadBytes,
      );
      connectChecks.set(client, refusal ?? PASSED);
      callback(null, true);
    },

    authenticate(client, _username, password, done) {
      const checked = connectChecks.get(client);
      connectChecks.delete(client);
      if (throttle) {
        // Checked before the credential lookup: a throttled guesser costs no database read.
        const verdict = throttle.check(addressOf(client), client.id ? `device:${client.id}` : null);
        if (!verdict.allowed) {
          metrics.connect('throttled');
          metrics.violation('FLT_AUTH_THROTTLED');
          done(authError(`throttled (${verdict.reason}) for ${Math.ceil(verdict.retryAfterMs / 1000)} s`, CONNACK.notAuthorized), false);
          return;
        }
      }
      if (checked !== PASSED) {
        refuse(client, checked ?? { code: 'FLT_MQTT_AUTH_FAILED', returnCode: CONNACK.notAuthorized, detail: 'connect checks missing' }, done);
        return;
      }
      const deviceId = client.id;
      sessions.beginAuth(deviceId, client);
      Promise.resolve()
        .then(() => auth.authenticate(deviceId, password as Buffer))
        .then(
          (ok) => {
            sessions.endAuth(deviceId, client);
            // Closed meanwhile (kicked, or the socket went away): aedes drops any answer.
            if (client.closed) return;
            if (ok !== true) {
              refuse(client, { code: 'FLT_MQTT_AUTH_FAILED', returnCode: CONNACK.badCredentials, detail: 'unknown device or bad credential' }, done);
              return;
            }
            // aedes will close the older session of this device when this one registers.
            for (const older of [sessions.current(deviceId), ctx.registered(deviceId)]) {
              if (older && older !== client) sessions.supersede(older);
            }
            metrics.connect('accepted');
            done(null, true);
          },
          (err: unknown) => {
            sessions.endAuth(deviceId, client);
            metrics.connect('error');
            logger.error({ err, deviceId }, 'device authenticator failed');
            done(authError('authentication unavailable', CONNACK.serverUnavailable), false);
          },
        );
    },

    authorizePublish(client, packet, callback) {
      if (client === null) {
        // A will left behind by a broker instance that died (only with shared persistence).
        const parsed = parseDeviceTopic(packet.topic);
        const owner = (packet as { clientId?: unknown }).clientId;
        callback(parsed?.channel === 'status' && parsed.deviceId === owner ? null : new FlotillaError('FLT_MQTT_WILL_FORBIDDEN'));
        return;
      }
      if (client.closed && sessions.isSuperseded(client)) {
        // The will of a session the same device replaced: it is online, so say nothing.
        callback(new Error('session superseded'));
        return;
      }
      const decision = checkPublish(client.id, packet.topic, packet.retain, Buffer.byteLength(packet.payload), maxPayloadBytes);
      if (!decision.ok) {
        reportViolation(client.id, decision.code, decision.detail);
        // aedes closes the connection on this error: a device breaking the policy is misbehaving.
        callback(new FlotillaError(decision.code, decision.detail));
        return;
      }
      callback(null);
    },

    authorizeSubscribe(client, sub, callback) {
      const refusal = checkSubscribe(client.id, sub.topic);
      if (refusal) {
        reportViolation(client.id, refusal.code, refusal.detail);
        callback(null, null); // SUBACK 128 for this filter; the connection stays up
        return;
      }
      callback(null, sub);
    },

    authorizeForward(client, packet) {
      if (maxOutgoingBufferBytes !== undefined) {
        if (shedding.has(client)) return null;
        const queued = (client as { conn?: { writableLength?: number } }).conn?.writableLength ?? 0;
        if (queued > maxOutgoingBufferBytes) {
          // The client stopped reading: everything sent to it now would pile up in server memory.
          shedding.add(client);
          metrics.shedConnection('slow_consumer');
          reportViolation(client.id, 'FLT_MQTT_SLOW_CONSUMER', `${queued} bytes unsent`);
          shed(client);
          return null;
        }
      }
      if (mayForward(client.id, packet.topic)) return packet;
      reportViolation(client.id, 'FLT_MQTT_TOPIC_FORBIDDEN', `forward of ${JSON.stringify(packet.topic)}`);
      return null;
    },

    published(packet, client, callback) {
      // client is null for the server's own publishes and aedes' $SYS traffic.
      if (client) {
        const parsed = parseDeviceTopic(packet.topic);
        if (parsed !== null && parsed.direction === 'up' && parsed.deviceId === client.id) {
          const channel = parsed.channel as UpChannel;
          metrics.messageIn(channel);
          const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
          const info = { retain: packet.retain, qos: packet.qos };
          safely(logger, 'deviceMessage', () => events.deviceMessage(client.id, channel, payload, info));
        }
      }
      callback(null);
    },
  };
}

/** Runs an event handler so that a throw in server code cannot break the broker's packet path. */
export function safely(logger: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error({ err, handler: what }, 'broker event handler threw');
  }
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}
