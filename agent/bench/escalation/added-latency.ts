/**
 * Added latency of an escalated request over a direct KServe v2 call to the same pool.
 *
 * Peer: a direct client (undici keep-alive pool, the request encoded once per call with the binary
 * tensor extension by @flotilla/kserve, the response decoded) POSTing to the pool's infer route.
 * Flotilla: the agent's Escalator answering the same digit, (1) `always-cloud` (no local run: the
 * cost of the escalation path itself) and (2) a confidence policy that escalates every request
 * after the local int8 run (what an application sees for a hard example). Calls are sequential, so
 * the figures are latencies, not throughput; the three clients take turns in blocks.
 */
import { randomUUID } from 'node:crypto';
import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH_HEADER } from '@flotilla/kserve';
import { Pool } from 'undici';
import { CloudClient } from '../../src/escalation/cloud-client.ts';
import { Escalator } from '../../src/escalation/escalator.ts';
import type { InferenceService } from '../../src/inference/service/inference-service.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { median, quantile, round } from '../stats.ts';

export interface AddedLatencyOptions {
  local: InferenceService;
  localModel: string;
  cloudModel: string;
  poolUrl: string;
  inputs: (i: number) => Tensor[];
  requests: number;
  block: number;
  budgetMs: number;
}

interface Series {
  p50Ms: number;
  p99Ms: number;
}

export interface AddedLatencyRun {
  direct: Series;
  alwaysCloud: Series;
  afterLocal: Series;
  /** Median of the per-block differences of p50 (escalated − direct). */
  addedP50Ms: { alwaysCloud: number; afterLocal: number };
  ratioP50: { alwaysCloud: number; afterLocal: number };
}

export async function runAddedLatency(o: AddedLatencyOptions): Promise<AddedLatencyRun> {
  const origin = new URL(o.poolUrl).origin;
  const direct = new Pool(origin, { connections: 4, pipelining: 1 });
  const cloud = new CloudClient({ probeIntervalMs: 0 });
  const routes = [{ pool: 'local', endpoints: [o.poolUrl] }];
  const escalators = {
    alwaysCloud: new Escalator({ local: o.local, cloud }),
    // An audit rate of 1 escalates every request once the local run has answered.
    afterLocal: new Escalator({ local: o.local, cloud }),
  };
  escalators.alwaysCloud.configure({ [o.localModel]: { policy: { mode: 'always-cloud', cloudModel: o.cloudModel, budgetMs: o.budgetMs }, routes } });
  escalators.afterLocal.configure({ [o.localModel]: { policy: { auditRate: 1, cloudModel: o.cloudModel, budgetMs: o.budgetMs }, routes } });
  const path = `/v2/models/${encodeURIComponent(o.cloudModel)}/infer`;

  // Unique ids: the pool replays an answer for a repeated request id (its idempotency cache).
  const run = randomUUID();
  let calls = 0;
  const callDirect = async (i: number): Promise<void> => {
    const enc = encodeInferRequest({ id: `direct-${run}-${calls++}`, inputs: o.inputs(i), binaryOutput: true }, { binaryInputs: true });
    const headers: Record<string, string> = { 'content-type': enc.contentType };
    if (enc.headerLength !== undefined) headers[HEADER_LENGTH_HEADER] = String(enc.headerLength);
    const res = await direct.request({ method: 'POST', path, headers, body: enc.body });
    const body = new Uint8Array(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw new Error(`direct call answered ${res.statusCode}`);
    const headerLength = res.headers[HEADER_LENGTH_HEADER];
    decodeInferResponse(body, { headerLength: typeof headerLength === 'string' ? Number(headerLength) : undefined });
  };
  const callEscalated = (e: Escalator) => async (i: number): Promise<void> => {
    const r = await e.infer(o.localModel, o.inputs(i));
    if (r.answeredBy !== 'cloud') throw new Error(`escalated request answered by ${r.answeredBy}`);
  };
  const clients = { direct: callDirect, alwaysCloud: callEscalated(escalators.alwaysCloud), afterLocal: callEscalated(escalators.afterLocal) };
  type Name = keyof typeof clients;
  const samples: Record<Name, number[]> = { direct: [], alwaysCloud: [], afterLocal: [] };
  const blockP50: Record<Name, number[]> = { direct: [], alwaysCloud: [], afterLocal: [] };

  try {
    // Warm every path (connections, JIT) before measuring.
    for (const f of Object.values(clients)) for (let i = 0; i < 50; i++) await f(i);
    let i = 0;
    for (let done = 0; done < o.requests; done += o.block) {
      for (const name of Object.keys(clients) as Name[]) {
        const block: number[] = [];
        for (let k = 0; k < o.block; k++) {
          const t0 = performance.now();
          await clients[name](i++);
          block.push(performance.now() - t0);
        }
        samples[name].push(...block);
        blockP50[name].push(median(block));
      }
    }
  } finally {
    await Promise.allSettled([direct.close(), cloud.close()]);
  }
  const series = (name: Name): Series => ({ p50Ms: round(median(samples[name]), 3), p99Ms: round(quantile(samples[name], 0.99), 3) });
  const added = (name: Name): number => round(median(blockP50[name].map((v, b) => v - blockP50.direct[b]!)), 3);
  const d = series('direct');
  const a = series('alwaysCloud');
  const l = series('afterLocal');
  return {
    direct: d,
    alwaysCloud: a,
    afterLocal: l,
    addedP50Ms: { alwaysCloud: added('alwaysCloud'), afterLocal: added('afterLocal') },
    ratioP50: { alwaysCloud: round(a.p50Ms / d.p50Ms, 3), afterLocal: round(l.p50Ms / d.p50Ms, 3) },
  };
}
