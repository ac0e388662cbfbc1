import type { Logger } from 'pino';
import type { EnrollRequest } from '@flotilla/protocol';
import { backoffDelay, retryAfterDelay, type BackoffPolicy } from '../mqtt/backoff.ts';
import type { Random } from '../runtime/random.ts';
import { sleep, type Timers } from '../runtime/timers.ts';
import type { EnrollClient, MqttEndpointsInfo } from './enroll-client.ts';

export type EnrollmentOutcome =
  | { status: 'accepted'; credential: string; mqtt: MqttEndpointsInfo }
  | { status: 'refused'; code: string; message: string }
  | { status: 'aborted' };

export interface EnrollmentLoopOptions {
  client: EnrollClient;
  /** Built fresh for every attempt so it can carry the latest inventory. */
  request: () => EnrollRequest;
  timers: Timers;
  random: Random;
  backoff: BackoffPolicy;
  logger: Logger;
  signal: AbortSignal;
  onPending?: (retryAfterSec: number) => void;
}

/**
 * Asks the server until it accepts or refuses the device. Pending answers are repeated with the
 * same enrollment key after the server's retryAfterSec (plus jitter, never less); transport errors
 * back off exponentially. A refusal (bad token, rejected, revoked, key mismatch) ends the loop.
 */
export async function enrollUntilDone(opts: EnrollmentLoopOptions): Promise<EnrollmentOutcome> {
  let failures = 0;
  while (!opts.signal.aborted) {
    let attempt;
    try {
      attempt = await opts.client.enroll(opts.request(), { signal: opts.signal });
    } catch {
      return { status: 'aborted' };
    }
    let waitMs: number;
    switch (attempt.kind) {
      case 'accepted':
        return { status: 'accepted', credential: attempt.credential, mqtt: attempt.mqtt };
      case 'refused':
        opts.logger.error({ code: attempt.code, httpStatus: attempt.httpStatus }, `enrollment refused: ${attempt.message}`);
        return { status: 'refused', code: attempt.code, message: attempt.message };
      case 'pending':
        failures = 0;
        opts.logger.info({ code: 'FLT_AGENT_ENROLL_PENDING', retryAfterSec: attempt.retryAfterSec }, 'enrollment pending approval');
        opts.onPending?.(attempt.retryAfterSec);
        waitMs = retryAfterDelay(attempt.retryAfterSec, opts.random);
        break;
      case 'retry':
        waitMs =
          attempt.retryAfterSec !== undefined
            ? retryAfterDelay(attempt.retryAfterSec, opts.random)
            : backoffDelay(failures, opts.backoff, opts.random);
        failures++;
        opts.logger.warn({ code: attempt.code, waitMs }, `enrollment attempt failed: ${attempt.reason}`);
        break;
    }
    await sleep(opts.timers, waitMs, opts.signal);
  }
  return { status: 'aborted' };
}
