import type { FastifyInstance } from 'fastify';
import { installErrorHandlers as installKServeErrorHandlers, mapError } from '@flotilla/agent/kserve-errors';

export { mapError };
export type { ErrorBody } from '@flotilla/agent/kserve-errors';

/** The pool answers errors like the agent's local API (KServe `{ error }` plus the FLT code). */
export function installErrorHandlers(app: FastifyInstance): void {
  installKServeErrorHandlers(app, {
    what: 'pool worker',
    // A failed session run is the worker's own fault, not the caller's.
    internalCodes: ['FLT_INFER_RUN_FAILED'],
    // A full queue clears within a batch or two: tell well-behaved clients when to come back.
    headersFor: (code) => (code === 'FLT_POOL_QUEUE_FULL' ? { 'retry-after': '1' } : undefined),
  });
}
