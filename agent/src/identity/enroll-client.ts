import { Agent as HttpAgent, request } from 'undici';
import { Compile } from 'typebox/compile';
import { EnrollResponse, ErrorBody, type EnrollRequest, type MqttEndpoints } from '@flotilla/protocol';
import type { Static } from 'typebox';

const checkResponse = Compile(EnrollResponse);
const checkError = Compile(ErrorBody);

export type MqttEndpointsInfo = Static<typeof MqttEndpoints>;

/** What one POST /v1/enroll told us. */
export type EnrollAttempt =
  | { kind: 'accepted'; credential: string; mqtt: MqttEndpointsInfo }
  | { kind: 'pending'; retryAfterSec: number }
  /** The server said no for good (401/403 and other 4xx): stop asking. */
  | { kind: 'refused'; httpStatus: number; code: string; message: string }
  /** Network trouble, 5xx, 408/429 or an answer we do not understand: ask again later. */
  | { kind: 'retry'; reason: string; code?: string; retryAfterSec?: number };

export interface EnrollHttpOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** One enrollment round trip. Never throws (except on abort): every outcome is an EnrollAttempt. */
export class EnrollClient {
  readonly #url: string;
  readonly #dispatcher = new HttpAgent({ connections: 2, keepAliveTimeout: 2_000 });
  #closed = false;

  constructor(serverUrl: string) {
    this.#url = new URL('/v1/enroll', serverUrl.endsWith('/') ? serverUrl : serverUrl + '/').toString();
  }

  async enroll(body: EnrollRequest, opts: EnrollHttpOptions = {}): Promise<EnrollAttempt> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    let status: number;
    let text: string;
    let retryAfterHeader: string | undefined;
    try {
      const res = await request(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        dispatcher: this.#dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      status = res.statusCode;
      const ra = res.headers['retry-after'];
      retryAfterHeader = Array.isArray(ra) ? ra[0] : ra;
      text = await res.body.text();
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      return { kind: 'retry', reason: `${(err as Error).name}: ${(err as Error).message}` };
    }
    return interpret(status, text, body.deviceId, retryAfterHeader);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#dispatcher.close();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function retryAfterSeconds(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const n = Number(header);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export function interpret(status: number, text: string, deviceId: string, retryAfterHeader?: string): EnrollAttempt {
  const json = parseJson(text);
  if (status === 200 || status === 202) {
    if (!checkResponse.Check(json)) {
      return { kind: 'retry', code: 'FLT_AGENT_ENROLL_BAD_RESPONSE', reason: `HTTP ${status} body does not match EnrollResponse` };
    }
    if (json.deviceId !== deviceId) {
      return { kind: 'retry', code: 'FLT_AGENT_ENROLL_BAD_RESPONSE', reason: `answer is for device ${JSON.stringify(json.deviceId)}` };
    }
    if (json.status === 'pending') return { kind: 'pending', retryAfterSec: Math.max(0, json.retryAfterSec) };
    return { kind: 'accepted', credential: json.credential, mqtt: json.mqtt };
  }
  const errorBody = checkError.Check(json) ? json : undefined;
  const code = errorBody?.code ?? `HTTP_${status}`;
  const message = errorBody?.message ?? text.slice(0, 200);
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterSec = retryAfterSeconds(retryAfterHeader);
    return { kind: 'retry', code, reason: `HTTP ${status} ${code}: ${message}`, ...(retryAfterSec !== undefined ? { retryAfterSec } : {}) };
  }
  if (status >= 400) return { kind: 'refused', httpStatus: status, code, message };
  return { kind: 'retry', code: 'FLT_AGENT_ENROLL_BAD_RESPONSE', reason: `unexpected HTTP ${status}` };
}
