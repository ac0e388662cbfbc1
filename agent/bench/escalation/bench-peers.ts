import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { decodeInferRequest, encodeInferResponse, HEADER_LENGTH_HEADER } from '@flotilla/kserve';

/**
 * BENCH-ONLY KServe v2 sink: decodes each request with the real codec and answers a fixed 10-float
 * output. Stands in for a pool when the tensor shape is one no pool model takes (wire-size runs).
 */
export async function startKServeSink(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = decodeInferRequest(Buffer.concat(chunks), { headerLength: req.headers[HEADER_LENGTH_HEADER] as string | undefined });
      const encoded = encodeInferResponse(
        { model_name: 'sink', model_version: '1', ...(request.id !== undefined && { id: request.id }), outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], data: new Float32Array(10).fill(0.1) }] },
        () => request.binaryOutput,
      );
      const headers: Record<string, string | number> = { 'content-type': encoded.contentType };
      if (encoded.headerLength !== undefined) headers[HEADER_LENGTH_HEADER] = encoded.headerLength;
      res.writeHead(200, headers).end(typeof encoded.body === 'string' ? encoded.body : Buffer.from(encoded.body));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Accepts connections and never answers: a cloud endpoint gone silent. */
export async function startBlackhole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An address where nothing listens: connections are refused. */
export async function refusedUrl(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
