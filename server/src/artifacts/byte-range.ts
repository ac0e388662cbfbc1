import type { ByteRange } from './artifact-store.ts';

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  | { kind: 'unsatisfiable' };

/**
 * Reads a `Range` header for a representation of `size` bytes (RFC 9110 §14). One range only:
 * `bytes=a-b`, `bytes=a-` and `bytes=-n`. Several ranges, other units or a malformed header are
 * answered with the whole body, which the RFC allows (a server may ignore Range); a well-formed
 * range that starts past the end is unsatisfiable (416).
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return { kind: 'full' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'full' };
  // Digits beyond what a safe integer holds would lose precision; no artifact is that large anyway.
  if (first.length > 15 || last.length > 15) return first === '' ? { kind: 'full' } : { kind: 'unsatisfiable' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end } };
}

/** Strong ETag comparison against an `If-None-Match` list (`*` matches anything). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/**
 * `If-Range`: honour Range only when the validator is our strong ETag. A date or another tag
 * means the client's partial copy may be of something else, so it gets the whole body.
 */
export function ifRangeAllows(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}
