import net from 'node:net';
import { Aedes } from 'aedes';
import { onTestFinished } from 'vitest';

/**
 * A plain in-process aedes broker (no auth: the test plays the server's role) on a real socket.
 * `stop()` and `restart()` simulate the broker going away and coming back on the same port.
 */
export class TestBroker {
  port = 0;
  #broker: Aedes | undefined;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  static async start(): Promise<TestBroker> {
    const b = new TestBroker();
    await b.#listen(0);
    onTestFinished(() => b.stop());
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  async #listen(port: number): Promise<void> {
    const broker = await Aedes.createBroker();
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#broker = broker;
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** Drops every connection at once, like a crashed server. */
  async stop(): Promise<void> {
    const server = this.#server;
    const broker = this.#broker;
    this.#server = undefined;
    this.#broker = undefined;
    if (!server || !broker) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.#listen(this.port);
  }
}
