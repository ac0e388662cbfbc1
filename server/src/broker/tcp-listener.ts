import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface BoundListener {
  port: number;
  /** Stops accepting and destroys every connection still open. */
  close(): Promise<void>;
}

/** Plain MQTT over TCP. TCP_NODELAY on every socket: MQTT packets are small and latency-bound. */
export async function listenTcp(host: string, port: number, accept: (socket: Socket) => void): Promise<BoundListener> {
  const sockets = new Set<Socket>();
  // One shared handler rather than a closure per socket.
  function forget(this: Socket): void {
    sockets.delete(this);
  }
  const server: Server = createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', forget);
    accept(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
