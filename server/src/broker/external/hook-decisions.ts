/**
 * The answers behind the HTTP hooks an external broker calls (EMQX, VerneMQ), made from the same
 * policy functions as the embedded broker's hooks. Broker-neutral: http-hooks.ts maps each
 * broker's request and response shapes onto these.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from '@flotilla/protocol';
import { checkConnect, checkPublish, checkSubscribe } from '../device-policy.ts';
import type { DeviceAuthenticator } from '../types.ts';

export interface HookPolicyOptions {
  auth: DeviceAuthenticator;
  /** true when the device is accepted and holds a current credential */
  isActive(deviceId: string): boolean;
  /** the server's own broker account: the one superuser */
  server: { username: string; password: string };
  maxPayloadBytes: number;
  onViolation?(deviceId: string | null, code: ErrorCode, detail: string): void;
}

export type HookDecision = { allow: true; superuser: boolean } | { allow: false; code: ErrorCode; detail: string };

export interface ClientIdentity {
  clientId: string;
  username: string | undefined;
}

export class HookPolicy {
  readonly #o: HookPolicyOptions;
  readonly #serverPassword: Buffer;

  constructor(opts: HookPolicyOptions) {
    this.#o = opts;
    this.#serverPassword = Buffer.from(opts.server.password);
  }

  async connect(who: ClientIdentity, password: string | undefined): Promise<HookDecision> {
    const secret = password === undefined ? undefined : Buffer.from(password, 'utf8');
    if (who.username === this.#o.server.username) {
      return secret !== undefined && sameSecret(secret, this.#serverPassword)
        ? { allow: true, superuser: true }
        : this.#deny(null, 'FLT_MQTT_AUTH_FAILED', 'bad credential for the server account');
    }
    // The hooks do not see the will; the broker's publish authorization checks it when it is sent.
    const refusal = checkConnect({ clientId: who.clientId, username: who.username, password: secret, will: null, clientIdInUse: false }, this.#o.maxPayloadBytes);
    if (refusal) return this.#deny(who.clientId, refusal.code, refusal.detail);
    let ok: boolean;
    try {
      ok = await this.#o.auth.authenticate(who.clientId, secret!);
    } catch {
      return { allow: false, code: 'FLT_MQTT_AUTH_FAILED', detail: 'authentication unavailable' };
    }
    return ok ? { allow: true, superuser: false } : this.#deny(who.clientId, 'FLT_MQTT_AUTH_FAILED', 'unknown device or bad credential');
  }

  /** payloadBytes is left out by brokers that do not send the payload; the broker's own size limit applies then. */
  publish(who: ClientIdentity, topic: string, retain: boolean, payloadBytes = 0): HookDecision {
    const gate = this.#session(who);
    if (gate) return gate;
    const decision = checkPublish(who.clientId, topic, retain, payloadBytes, this.#o.maxPayloadBytes);
    return decision.ok ? { allow: true, superuser: false } : this.#deny(who.clientId, decision.code, decision.detail);
  }

  subscribe(who: ClientIdentity, filter: string): HookDecision {
    const gate = this.#session(who);
    if (gate) return gate;
    const refusal = checkSubscribe(who.clientId, filter);
    return refusal ? this.#deny(who.clientId, refusal.code, refusal.detail) : { allow: true, superuser: false };
  }

  /** Common to every packet after CONNECT: the server passes; a device must still be itself and still active. */
  #session(who: ClientIdentity): HookDecision | null {
    if (who.username === this.#o.server.username) return { allow: true, superuser: true };
    if (who.username !== who.clientId) return this.#deny(who.clientId, 'FLT_MQTT_CLIENT_ID_INVALID', 'client id differs from username');
    if (!this.#o.isActive(who.clientId)) return this.#deny(who.clientId, 'FLT_MQTT_AUTH_FAILED', 'device is no longer active');
    return null;
  }

  #deny(deviceId: string | null, code: ErrorCode, detail: string): HookDecision {
    this.#o.onViolation?.(deviceId, code, detail);
    return { allow: false, code, detail };
  }
}

function sameSecret(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
