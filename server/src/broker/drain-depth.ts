/**
 * The part of aedes' message emitter (mqemitter) that drains its queue. Past its concurrency limit
 * mqemitter queues publishes; when one finishes, `released` starts the next queued one from inside
 * that completion, and a message with no async handler finishes at once, so a backlog drains as a
 * recursion one level per message. A few thousand queued messages (10,000 devices under load)
 * overflow the stack and take the process down.
 */
export interface DrainingEmitter {
  current: number;
  _do(message: unknown, callback: unknown): unknown;
}

/** Nested drains allowed on one stack before the next message is started on a fresh one. */
export const MAX_DRAIN_DEPTH = 200;

function isDrainingEmitter(mq: unknown): mq is DrainingEmitter {
  const m = mq as Partial<DrainingEmitter> | null;
  return typeof m === 'object' && m !== null && typeof m._do === 'function' && typeof m.current === 'number';
}

/**
 * Bounds that recursion: past `maxDepth` nested starts the next message is started from
 * `setImmediate`, keeping its slot meanwhile so later publishes still queue behind it (order is
 * kept). Returns false when the emitter does not have the expected shape (another mqemitter
 * version), so the caller can say so.
 */
export function boundDrainDepth(mq: unknown, maxDepth = MAX_DRAIN_DEPTH): boolean {
  if (!isDrainingEmitter(mq)) return false;
  const start = mq._do;
  let depth = 0;
  mq._do = function boundedDo(this: DrainingEmitter, message: unknown, callback: unknown): unknown {
    if (depth >= maxDepth) {
      mq.current++;
      setImmediate(() => {
        mq.current--;
        mq._do(message, callback);
      });
      return mq;
    }
    depth++;
    try {
      return start.call(mq, message, callback);
    } finally {
      depth--;
    }
  };
  return true;
}
