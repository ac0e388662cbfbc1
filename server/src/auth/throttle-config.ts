import type { ServerConfig } from '../config/schema.ts';
import { FailureThrottle } from './failure-throttle.ts';

/** The failed-authentication throttle the `guards` settings describe. */
export function throttleFromConfig(guards: Readonly<ServerConfig['guards']>, now: () => number): FailureThrottle {
  return new FailureThrottle({
    windowMs: guards.authFailureWindowSec * 1000,
    perAddress: guards.authFailuresPerAddress,
    perIdentity: guards.authFailuresPerIdentity,
    blockMs: guards.authBlockSec * 1000,
    maxBlockMs: Math.max(guards.authMaxBlockSec, guards.authBlockSec) * 1000,
    maxEntries: guards.authTrackedEntries,
    exemptAddresses: guards.exemptAddresses,
    now,
  });
}
