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

  function reportViolation(deviceId: string | null, code: ErrorCode, detail: string): void {
    metrics.violation(code);
    logger.warn({ deviceId, code, detail }, 'mqtt policy violation');
    if (events.policyViolation) safely(logger, 'policyViolation', () => events.policyViolation?.(deviceId, code, detail));
  }

  function refuse(client: Client, refusal: ConnectRefusal, done: Parameters<PolicyHooks['authenticate']>[3]): void {
    metrics.connect('refused');
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
