/** Where an answer came from, as the agent's local API says in `parameters.flotilla_answered_by`. */
export type AnsweredBy = 'edge' | 'cloud' | 'edge-fallback';

/** What the demo's traffic saw on one device. */
export interface DeviceTraffic {
  requests: number;
  /** Answers other than 200 with outputs, and requests that got no answer at all. */
  failed: number;
  edge: number;
  cloud: number;
  edgeFallback: number;
  /** Answers whose top class matched the digit's label. */
  correct: number;
  /** Answers of the edge model by its version (cloud answers carry the cloud model's version and are left out). */
  byVersion: Record<string, number>;
  lastError: string | null;
}

export function emptyTraffic(): DeviceTraffic {
  return { requests: 0, failed: 0, edge: 0, cloud: 0, edgeFallback: 0, correct: 0, byVersion: {}, lastError: null };
}

/** Share of answered requests that went to the cloud, answered there or not. */
export function escalationShare(t: DeviceTraffic): number {
  const answered = t.edge + t.cloud + t.edgeFallback;
  return answered === 0 ? 0 : (t.cloud + t.edgeFallback) / answered;
}

export function accuracy(t: DeviceTraffic): number {
  const answered = t.edge + t.cloud + t.edgeFallback;
  return answered === 0 ? 0 : t.correct / answered;
}

export function totalTraffic(ts: Iterable<DeviceTraffic>): DeviceTraffic {
  const sum = emptyTraffic();
  for (const t of ts) {
    sum.requests += t.requests;
    sum.failed += t.failed;
    sum.edge += t.edge;
    sum.cloud += t.cloud;
    sum.edgeFallback += t.edgeFallback;
    sum.correct += t.correct;
    for (const [v, n] of Object.entries(t.byVersion)) sum.byVersion[v] = (sum.byVersion[v] ?? 0) + n;
    sum.lastError = t.lastError ?? sum.lastError;
  }
  return sum;
}
