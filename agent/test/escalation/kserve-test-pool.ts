import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { decodeInferRequest, encodeErrorBody, encodeInferResponse, HEADER_LENGTH_HEADER, type InferRequest } from '@flotilla/kserve';
import type { Tensor } from '../../src/inference/types.ts';

/**
 * TEST-ONLY minimal KServe v2 server standing in for a cloud pool: decodes requests with the real
 * codec and answers through a handler. It records every request (KServe id, Idempotency-Key) and can
 * be told to fail, so tests see what the client sent. Not the pool worker (packages/pool).
 */
export interface TestPool {
  url: string;
  requests: Array<{ model: string; id: string | undefined; idempotencyKey: string | undefined; bytes: number }>;
  /** Next answers: a status to fail with, or 'ok'. Empty: always ok. */
  script: Array<number | 'ok'>;
  ready: boolean;
  /** While set, successful answers wait for this promise: a slow pool the test releases. */
  hold: Promise<void> | undefined;
  close(): Promise<void>;
}

export type PoolHandler = (model: string, request: InferRequest) => Tensor[];

export async function startTestPool(handler: PoolHandler): Promise<TestPool> {
  const state: Omit<TestPool, 'url' | 'close'> = { requests: [], script: [], ready: true, hold: undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === '/v2/health/ready') {
        res.writeHead(state.ready ? 200 : 503).end();
        return;
      }
      const m = /^\/v2\/models\/([^/]+)\/infer$/.exec(url);
      if (req.method !== 'POST' || !m) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(encodeErrorBody('not found'));
        return;
      }
      const body = Buffer.concat(chunks);
      const model = decodeURIComponent(m[1]!);
      try {
        const request = decodeInferRequest(body, { headerLength: header(req.headers, HEADER_LENGTH_HEADER) });
        state.requests.push({ model, id: request.id, idempotencyKey: header(req.headers, 'idempotency-key'), bytes: body.byteLength });
        const step = state.script.shift() ?? 'ok';
        if (step !== 'ok') {
          res.writeHead(step, { 'content-type': 'application/json' }).end(encodeErrorBody(`scripted ${step}`));
          return;
        }
        const outputs = handler(model, request);
        const encoded = encodeInferResponse({ model_name: model, model_version: '9.0.0', ...(request.id !== undefined && { id: request.id }), outputs }, () => request.binaryOutput);
        const headers: Record<string, string | number> = { 'content-type': encoded.contentType };
        if (encoded.headerLength !== undefined) headers[HEADER_LENGTH_HEADER] = encoded.headerLength;
        const send = (): void => void res.writeHead(200, headers).end(typeof encoded.body === 'string' ? encoded.body : Buffer.from(encoded.body));
        if (state.hold) void state.hold.then(send);
        else send();
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(encodeErrorBody((err as Error).message));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      })),
  });
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A TCP server that accepts connections and never answers: a cloud endpoint gone silent. */
export async function startBlackhole(): Promise<{ url: string; connections: () => number; open: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createTcpServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    /** Connections accepted and not yet closed by the caller. */
    open: () => sockets.size,
    close: () =>
      (closing ??= new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      })),
  };
}

/** An address where nothing listens (a port bound, then released): connections are refused. */
export async function refusedUrl(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
