import net from 'node:net';
import { Aedes } from 'aedes';
import { onTestFinished } from 'vitest';

export interface TestBrokerOptions {
  /** Checks MQTT username/password; refused connects get CONNACK 5 (not authorized). No check when absent. */
  authenticate?: (clientId: string, username: string | undefined, password: string | undefined) => boolean;
}

/**
 * A plain in-process aedes broker on a real socket (port 0). It knows nothing of Flotilla: the test
 * plays the server's role. `stop()` / `restart()` simulate the broker going away and coming back
 * on the same port; `admit` holds chosen clients off; `dropClient` kills one client's socket.
 */
export class TestBroker {
  port = 0;
  /** Clients for which this returns false are disconnected before their CONNACK. */
  admit: (clientId: string) => boolean = () => true;
  readonly #opts: TestBrokerOptions;
  #broker: Aedes | undefined;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  #byClient = new Map<string, { destroy(): void }>();

  private constructor(opts: TestBrokerOptions) {
    this.#opts = opts;
  }

  static async start(opts: TestBrokerOptions = {}): Promise<TestBroker> {
    const b = new TestBroker(opts);
    await b.#listen(0);
    onTestFinished(() => b.stop());
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async #listen(port: number): Promise<void> {
    const auth = this.#opts.authenticate;
    const broker = await Aedes.createBroker({
      // An error (not just `false`) makes aedes close the socket instead of leaving the client waiting.
      preConnect: (_client, packet, callback) => (this.admit(packet.clientId) ? callback(null, true) : callback(new Error('held off by the test'), false)),
      ...(auth
        ? {
            authenticate: (client, username, password, done) => {
              if (auth(client.id, username, password?.toString())) return done(null, true);
              const err = Object.assign(new Error('not authorized'), { returnCode: 5 as const });
              done(err, false);
            },
          }
        : {}),
    });
    broker.on('client', (client) => this.#byClient.set(client.id, client.conn as unknown as { destroy(): void }));
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

  /** Destroys one client's socket without a DISCONNECT, so the broker publishes its will. */
  dropClient(clientId: string): void {
    this.#byClient.get(clientId)?.destroy();
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
