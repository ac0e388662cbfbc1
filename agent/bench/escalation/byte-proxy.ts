import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A TCP proxy that counts the bytes each way: what an escalation really puts on the wire. */
export interface ByteProxy {
  url: string;
  /** Bytes client → upstream and upstream → client since the last reset. */
  counts(): { up: number; down: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startByteProxy(upstreamPort: number): Promise<ByteProxy> {
  let up = 0;
  let down = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (b: Buffer) => {
      up += b.byteLength;
      upstream.write(b);
    });
    upstream.on('data', (b: Buffer) => {
      down += b.byteLength;
      client.write(b);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts: () => ({ up, down }),
    reset: () => {
      up = 0;
      down = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
