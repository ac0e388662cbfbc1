import { CloudClient } from '../../src/escalation/cloud-client.ts';
import type { Tensor } from '../../src/inference/types.ts';
import { tensorBytes } from '../../src/escalation/policy.ts';
import { round } from '../stats.ts';
import { startByteProxy } from './byte-proxy.ts';

export interface WireRun {
  peer: string;
  shape: number[];
  rawBytes: number;
  /** Client → server bytes per request, HTTP request line and headers included. */
  wireBytesPerRequest: number;
  ratio: number;
  /** 1.05 × raw + 1 KiB. */
  targetBytes: number;
  withinTarget: boolean;
  responseBytesPerRequest: number;
}

/** Sends `requests` escalations through a counting TCP proxy over one keep-alive connection. */
export async function runWireBytes(opts: { peer: string; upstreamPort: number; model: string; input: Tensor; requests: number }): Promise<WireRun> {
  const proxy = await startByteProxy(opts.upstreamPort);
  const cloud = new CloudClient({ probeIntervalMs: 0, connections: 1 });
  try {
    const route = [{ pool: 'p', endpoints: [proxy.url] }];
    // One warm-up request opens the connection; its bytes are not counted.
    await cloud.infer({ model: opts.model, inputs: [opts.input], routes: route, requestId: 'warmup-0000', deadline: Date.now() + 10_000 });
    proxy.reset();
    for (let i = 0; i < opts.requests; i++) {
      await cloud.infer({ model: opts.model, inputs: [opts.input], routes: route, requestId: crypto.randomUUID(), deadline: Date.now() + 10_000 });
    }
    const { up, down } = proxy.counts();
    const raw = tensorBytes([opts.input]);
    const perRequest = up / opts.requests;
    const target = 1.05 * raw + 1024;
    return {
      peer: opts.peer,
      shape: opts.input.shape,
      rawBytes: raw,
      wireBytesPerRequest: round(perRequest, 1),
      ratio: round(perRequest / raw, 4),
      targetBytes: round(target, 1),
      withinTarget: perRequest <= target,
      responseBytesPerRequest: round(down / opts.requests, 1),
    };
  } finally {
    await cloud.close();
    await proxy.close();
  }
}
